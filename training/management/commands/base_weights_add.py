"""Register an Ultralytics `.pt` as base weights (operators only: a `.pt` is a pickle)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.errors import ValidationFailed
from training.base_weights import base_weights_add


class Command(BaseCommand):
    help = (
        "Register PATH, an Ultralytics .pt you vouch for (loading a .pt runs code), as base weights every "
        "project admin may start runs from. It is stored under its sha256 and checked before every load."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--source", default="", help="where the file came from, e.g. a release URL")

    def handle(self, *args, path: Path, name: str, source: str, **options) -> None:
        if not path.is_file() or path.suffix != ".pt":
            raise CommandError(f"{path} is not a .pt file")
        try:
            base = base_weights_add(path=path, name=name, source=source)
        except ValidationFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"base weights {base.pk} {base.name!r}: {base.architecture}, {len(base.classes)} classes, "
            f"sha256 {base.sha256}, {base.size:,} bytes"
        )
