"""Simulated annotators work through a project's tasks with the real services."""

from django.core.management.base import BaseCommand, CommandError

from demo.simulation import panel_simulate
from projects.models import Project


class Command(BaseCommand):
    help = "Simulated annotators with habit profiles annotate a project's synthetic images."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("--annotators", type=int, default=5)
        parser.add_argument("--fraction", type=float, default=0.7, help="share of the k x images slots to fill")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, project: str, annotators: int, fraction: float, seed: int, **options) -> None:
        target = (
            Project.objects.filter(pk=int(project)).first()
            if project.isdigit()
            else Project.objects.filter(name=project).first()
        )
        if target is None:
            raise CommandError(f"No project {project!r}.")
        if not 0 < fraction <= 1 or annotators < 1:
            raise CommandError("--fraction must be in (0, 1] and --annotators at least 1")
        run = panel_simulate(project=target, annotators=annotators, fraction=fraction, seed=seed)
        self.stdout.write(
            f"{len(run.annotators)} simulated annotators ({', '.join(run.annotators)}) submitted "
            f"{run.submitted} of {run.target} slots; {run.skipped} skipped."
        )
