"""The panel at work: each annotator's slot on an image (lease, draft, submit or skip)
and the model's suggestions they may start from."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from datasets.models import Image
from groundtruth.models import Annotation


class AssignmentState(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Lease expired"


class Assignment(models.Model):
    """One annotator's slot on one image: leased, then submitted or skipped (or expired).

    An image takes at most the project's k annotators, counting submissions and live leases.
    `version` grows with every draft save, so a stale tab is told (412) instead of
    silently overwriting newer work.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    state = models.CharField(max_length=16, choices=AssignmentState.choices, default=AssignmentState.LEASED)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)
    draft = models.JSONField(default=list, blank=True, help_text="Boxes saved so far, as the canvas sent them.")
    active_seconds = models.FloatField(default=0.0)
    skip_reason = models.CharField(max_length=500, blank=True)
    is_blind = models.BooleanField(
        default=True, help_text="Leased by a panel annotator (holds one of the image's k places)."
    )
    annotation = models.OneToOneField(
        Annotation, null=True, blank=True, on_delete=models.PROTECT, related_name="assignment"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            models.UniqueConstraint(fields=["image", "annotator"], name="assignment_one_per_image_annotator"),
            models.CheckConstraint(condition=models.Q(state__in=AssignmentState.values), name="assignment_state_valid"),
        ]
        indexes = [
            models.Index(fields=["image", "state", "lease_expires_at"]),
            models.Index(fields=["annotator", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on image {self.image_id}: {self.state}"

    @property
    def is_live(self) -> bool:
        return self.state == AssignmentState.LEASED and self.lease_expires_at > timezone.now()


class Suggestion(models.Model):
    """A model's boxes for an image, offered to its annotators when the project allows it
    (written by serving's pre-annotation; the latest per image)."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="suggestion")
    boxes = models.JSONField(default=list, help_text="[{x1, y1, x2, y2, label, score}] in image pixels.")
    source = models.CharField(max_length=120, help_text="Which model made them, e.g. 'model 3'.")
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"suggestion for {self.image} by {self.source}"
