"""What the demo knows and the panel does not: the true boxes of the scenes it drew."""

from django.db import models

from datasets.models import Image


class SyntheticTruth(models.Model):
    """The true boxes of a synthetic image, known because Quorum drew them.

    Only tests, the demo and staff read these; no annotator-facing page or API shows them.
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="synthetic_truth")
    generator = models.CharField(max_length=32)
    seed = models.PositiveBigIntegerField()
    boxes = models.JSONField(help_text="Pedestrians: [[x1, y1, x2, y2], ...] in image pixels.")
    visible = models.JSONField(help_text="Fraction of each pedestrian left visible by occluders.")
    ignore = models.JSONField(help_text="Crowd regions: [[x1, y1, x2, y2], ...].")

    class Meta:
        db_table = "annotation_synthetictruth"
        ordering = ["image"]

    def __str__(self) -> str:
        return f"truth of {self.image} ({len(self.boxes)} pedestrians)"

    @property
    def pedestrian_count(self) -> int:
        return len(self.boxes)
