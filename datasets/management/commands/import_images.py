"""Ingest a server-side folder of images into a project, through the same service as uploads."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.ingest import IncomingImage, image_ingest_one
from projects.models import Project

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


class Command(BaseCommand):
    help = "Import every JPEG, PNG and WebP under FOLDER into PROJECT (id or name)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--condition",
            action="append",
            default=[],
            metavar="DIMENSION=VALUE",
            help="a condition for every image, e.g. --condition weather=rain (repeatable)",
        )
        parser.add_argument("--all-files", action="store_true", help="try every file, not only image suffixes")

    def handle(self, *args, project: str, folder: Path, condition: list[str], all_files: bool, **options) -> None:
        target = self._project(project)
        conditions = {}
        for item in condition:
            dimension, _, value = item.partition("=")
            if not value:
                raise CommandError(f"--condition {item!r}: use DIMENSION=VALUE, e.g. weather=rain")
            conditions[dimension] = value
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and (all_files or p.suffix.lower() in SUFFIXES))
        totals = {"stored": 0, "duplicate": 0, "refused": 0}
        for path in paths:
            with path.open("rb") as file:
                upload = IncomingImage(
                    name=str(path.relative_to(folder)), file=file, size=path.stat().st_size, conditions=conditions
                )
                result = image_ingest_one(project=target, upload=upload, user=None)
            totals[result.status] += 1
            if result.status == "stored":
                self.stdout.write(f"stored     {result.name} -> image {result.image_id} ({result.split})")
            elif result.status == "duplicate":
                self.stdout.write(f"duplicate  {result.name}: {result.message}")
            else:
                self.stderr.write(f"refused    {result.name}: {result.message}")
        self.stdout.write(
            f"{len(paths)} files: {totals['stored']} stored, {totals['duplicate']} duplicates, "
            f"{totals['refused']} refused."
        )

    def _project(self, key: str) -> Project:
        project = (
            Project.objects.filter(pk=int(key)).first() if key.isdigit() else Project.objects.filter(name=key).first()
        )
        if project is None:
            raise CommandError(f"No project {key!r}.")
        return project
