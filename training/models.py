"""Models of the training app: frozen dataset snapshots (runs and the registry follow)."""

from django.conf import settings
from django.db import models

from annotation.models import Project
from groundtruth.models import ConsensusVersion


class DatasetSnapshot(models.Model):
    """A consensus version and the split, frozen as a YOLO dataset in storage (train and
    val; the test split is kept apart). The same inputs give the same content hash, and
    the same snapshot."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    consensus_version = models.ForeignKey(ConsensusVersion, on_delete=models.PROTECT, related_name="snapshots")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the images, splits, boxes and labels.")
    storage_prefix = models.CharField(
        max_length=255, help_text="Folder in storage holding data.yaml, images/, labels/."
    )
    images = models.JSONField(default=dict, help_text="Images per split, e.g. {'train': 80, 'val': 10}.")
    boxes = models.PositiveIntegerField(default=0)
    masked_regions = models.PositiveIntegerField(default=0, help_text="Ignore regions filled with the image mean.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "content_hash"], name="snapshot_unique_content")]

    def __str__(self) -> str:
        return f"snapshot {self.content_hash[:12]} of {self.project}"
