"""Write a Quorum model as a safetensors file that starts runs on another installation."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.base_weights import model_export_safetensors
from training.models import ModelVersion
from training.runner import verified_weights_path


class Command(BaseCommand):
    help = (
        "Write model MODEL_ID's weights to FILE as a safetensors state dict, its architecture and classes in "
        "the metadata; upload it as base weights (POST /api/v1/base-weights/) on any installation."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("model_id", type=int)
        parser.add_argument("file", type=Path)

    def handle(self, *args, model_id: int, file: Path, **options) -> None:
        model = ModelVersion.objects.select_related("run", "project").filter(pk=model_id).first()
        if model is None:
            raise CommandError(f"No model {model_id}")
        if file.suffix != ".safetensors":
            raise CommandError("FILE must end in .safetensors")
        with verified_weights_path(model) as weights:
            metadata = model_export_safetensors(
                weights=weights, architecture=model.run.architecture, classes=list(model.project.labels), target=file
            )
        self.stdout.write(
            f"{file}: model {model.number} of {model.project.name}, {metadata['architecture']}, "
            f"classes {metadata['classes']}"
        )
