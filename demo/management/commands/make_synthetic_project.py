"""Create (or extend) a project of synthetic street scenes with known true boxes."""

from django.core.management.base import BaseCommand, CommandError

from demo.synthetic_data import synthetic_images_add
from projects.models import Project
from projects.services import project_create


class Command(BaseCommand):
    help = "Render N synthetic street scenes for a seed into a project (created if needed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--images", type=int, default=300)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default=None, help="project name (default: 'Synthetic streets, seed S')")

    def handle(self, *args, images: int, seed: int, name: str | None, **options) -> None:
        if images < 1:
            raise CommandError("--images must be at least 1")
        name = name or f"Synthetic streets, seed {seed}"
        project = Project.objects.filter(name=name).first()
        if project is None:
            project = project_create(
                name=name,
                created_by=None,
                description="Synthetic street scenes rendered by Quorum; the true boxes are known.",
                split_seed=seed,
            )
            self.stdout.write(f"Created project {project.pk}: {project.name}")

        def progress(done: int, total: int) -> None:
            if done % 48 == 0 or done == total:
                self.stdout.write(f"  {done}/{total} scenes")
                self.stdout.flush()

        totals = synthetic_images_add(project=project, count=images, seed=seed, progress=progress)
        self.stdout.write(
            f"Project {project.pk} ({project.name}): {totals['stored']} stored, "
            f"{totals['duplicate']} already there, {totals['refused']} refused."
        )
