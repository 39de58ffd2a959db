"""A project's images as Quorum stored them, and how many of them each split holds."""

import hashlib
import hmac

from django.conf import settings
from django.db import models

from projects.models import Project, Split


def media_key(sha256: str) -> str:
    """The name an image's content is stored under: one per content, like the sha256, but
    not the sha256 itself. On S3 the name reaches browsers inside presigned URLs, and an
    annotator's task must not name the content of its image (blind panels)."""
    return hmac.new(settings.SECRET_KEY.encode(), f"quorum-image:{sha256}".encode(), hashlib.sha256).hexdigest()


def image_storage_path(project_id: int, sha256: str, extension: str) -> str:
    """images/<project>/<key[:2]>/<key>.<ext>, the key from `media_key`."""
    key = media_key(sha256)
    return f"images/{project_id}/{key[:2]}/{key}.{extension}"


def thumbnail_storage_path(project_id: int, sha256: str) -> str:
    key = media_key(sha256)
    return f"thumbnails/{project_id}/{key[:2]}/{key}.jpg"


def image_storage_name(image: "Image", filename: str) -> str:
    return image_storage_path(image.project_id, image.sha256, filename.rsplit(".", 1)[-1])


def thumbnail_storage_name(image: "Image", filename: str) -> str:
    return thumbnail_storage_path(image.project_id, image.sha256)


class ImageFormat(models.TextChoices):
    JPEG = "jpeg", "JPEG"
    PNG = "png", "PNG"
    WEBP = "webp", "WebP"


class Image(models.Model):
    """One image of a project, stored upright and without EXIF, as Quorum decoded it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_storage_name, max_length=255)
    thumbnail = models.FileField(upload_to=thumbnail_storage_name, max_length=255, blank=True)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, help_text="Of the uploaded bytes; duplicates are refused per project.")
    format = models.CharField(max_length=8, choices=ImageFormat.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    exif_orientation = models.PositiveSmallIntegerField(
        default=1, help_text="The uploaded file's EXIF orientation (1: none); 5 to 8 turned it a quarter."
    )
    bytes = models.PositiveBigIntegerField(help_text="Size of the stored file.")
    conditions = models.JSONField(default=dict, blank=True, help_text="Dimension -> value, from the vocabulary.")
    stratum = models.CharField(
        max_length=255, blank=True, help_text="The condition combination the split is stratified by."
    )
    split = models.CharField(max_length=8, choices=Split.choices)
    is_gold = models.BooleanField(default=False)
    is_synthetic = models.BooleanField(default=False)
    shuffle_key = models.PositiveIntegerField(
        default=0, help_text="Seeded position in the annotation queue among images equally far along."
    )
    submitted_count = models.PositiveIntegerField(
        default=0, help_text="Panel submissions so far (kept with the assignments, for the queue)."
    )
    priority = models.PositiveSmallIntegerField(
        default=0, help_text="Higher first in the annotation queue (served images a model was unsure of: 1)."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "annotation_image"
        ordering = ["project", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_content_per_project"),
            models.CheckConstraint(condition=models.Q(split__in=Split.values), name="image_split_valid"),
            models.CheckConstraint(condition=models.Q(width__gte=1, height__gte=1), name="image_size_positive"),
        ]
        indexes = [
            models.Index(fields=["project", "stratum", "split"]),
            models.Index(fields=["project", "shuffle_key"]),
            models.Index(
                fields=["project", "is_gold", "-priority", "-submitted_count", "shuffle_key"], name="image_queue_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.width}x{self.height})"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


class SplitTally(models.Model):
    """How many images of a project are in each split, per group the split draw balances:
    the whole project ("all"), each condition combination ("stratum:...") and each single
    condition ("condition:weather=rain"). Kept in step with the images at ingest, so the
    draw reads a few rows instead of counting the project's images every time."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="split_tallies")
    group = models.CharField(max_length=300)
    split = models.CharField(max_length=8, choices=Split.choices)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "annotation_splittally"
        ordering = ["project", "group", "split"]
        constraints = [
            models.UniqueConstraint(fields=["project", "group", "split"], name="split_tally_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.group} {self.split} = {self.count}"
