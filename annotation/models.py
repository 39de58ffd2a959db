"""Projects, who works on them in which role, and their images."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    """A member's role in one project; each role may do everything the one before may."""

    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]


ROLE_RANK = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VAL = "val", "Validation"
    TEST = "test", "Test"


def default_labels() -> list[str]:
    return ["pedestrian"]


def default_conditions() -> dict[str, list[str]]:
    """The condition vocabulary: dimension -> allowed values. Splits are stratified by it."""
    return {
        "weather": ["sun", "overcast", "rain", "night"],
        "setting": ["street", "indoor", "behind-glass"],
        "resolution": ["hd", "low"],
    }


def new_split_seed() -> int:
    return secrets.randbelow(2**31)


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=default_labels, help_text="The label set boxes may carry.")
    overlap_k = models.PositiveSmallIntegerField(
        default=3, help_text="How many annotators label each image, blind to each other."
    )
    train_percent = models.PositiveSmallIntegerField(default=80)
    val_percent = models.PositiveSmallIntegerField(default=10)
    test_percent = models.PositiveSmallIntegerField(default=10)
    split_seed = models.PositiveIntegerField(
        default=new_split_seed, help_text="Seeds the split draw; the same seed and arrivals give the same splits."
    )
    conditions = models.JSONField(
        default=default_conditions, help_text="Condition vocabulary: dimension -> allowed values."
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, help_text="How long an annotator holds an image before it returns to the pool."
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of tasks that are gold images, 0 to 1.")
    allow_suggestions = models.BooleanField(
        default=False,
        help_text="Show the champion's boxes in the canvas as suggestions. Off keeps the panel blind; boxes taken "
        "from a suggestion are marked, so their bias can be measured on gold images.",
    )
    gold_pause_after = models.PositiveSmallIntegerField(
        default=0,
        help_text="Pause an annotator whose last this many gold tasks all scored below gold_min_f1 (0: never).",
    )
    gold_min_f1 = models.FloatField(
        default=0.5, help_text="The gold F1 (IoU 0.5) below which a gold task counts as failed."
    )
    reviewers_annotate = models.BooleanField(
        default=False,
        help_text="Members with review rights (reviewers, admins, staff) may take annotation tasks. They can see "
        "others' boxes, so their annotations are marked not blind, fill none of an image's k places, and are left "
        "out of the consensus and the human baseline unless a consensus version includes them.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="project_name_unique_ci"),
            models.CheckConstraint(condition=models.Q(overlap_k__gte=1), name="project_overlap_k_positive"),
            models.CheckConstraint(
                condition=models.Q(gold_rate__gte=0) & models.Q(gold_rate__lte=1), name="project_gold_rate_range"
            ),
            models.CheckConstraint(condition=models.Q(lease_minutes__gte=1), name="project_lease_positive"),
            models.CheckConstraint(
                condition=models.Q(train_percent__gte=1)
                & models.Q(val_percent__gte=1)
                & models.Q(test_percent__gte=1)
                & models.Q(train_percent__lte=98),
                name="project_split_percent_range",
            ),
            models.CheckConstraint(
                condition=models.Q(train_percent=100 - models.F("val_percent") - models.F("test_percent")),
                name="project_split_percent_sum_100",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def split_shares(self) -> dict[str, float]:
        """Target share of each split, summing to 1."""
        return {
            Split.TRAIN: self.train_percent / 100,
            Split.VAL: self.val_percent / 100,
            Split.TEST: self.test_percent / 100,
        }


class Membership(models.Model):
    """A user's role in one project. Staff users are admins of every project without a row."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    gold_cleared_at = models.DateTimeField(
        null=True, blank=True, help_text="A reviewer let them continue: earlier gold tasks no longer pause them."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"


def image_storage_name(image: "Image", filename: str) -> str:
    """Content-addressed: images/<project>/<sha256[:2]>/<sha256>.<ext>."""
    extension = filename.rsplit(".", 1)[-1]
    return f"images/{image.project_id}/{image.sha256[:2]}/{image.sha256}.{extension}"


def thumbnail_storage_name(image: "Image", filename: str) -> str:
    return f"thumbnails/{image.project_id}/{image.sha256[:2]}/{image.sha256}.jpg"


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
        ordering = ["image"]

    def __str__(self) -> str:
        return f"truth of {self.image} ({len(self.boxes)} pedestrians)"

    @property
    def pedestrian_count(self) -> int:
        return len(self.boxes)


class AnnotationKind(models.TextChoices):
    SUBMISSION = "submission", "Annotator's submission"
    GOLD = "gold", "Gold reference"


class AnnotationSource(models.TextChoices):
    PANEL = "panel", "Drawn in Quorum"
    IMPORT = "import", "Imported"
    SIMULATED = "simulated", "Simulated annotator"


class Annotation(models.Model):
    """One person's complete, submitted set of boxes for one image; immutable once written.

    A correction is a new revision that supersedes the old one, which is kept. A gold
    reference is an annotation of kind "gold": the boxes an annotator's work on a gold image
    is scored against.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    kind = models.CharField(max_length=16, choices=AnnotationKind.choices, default=AnnotationKind.SUBMISSION)
    source = models.CharField(max_length=16, choices=AnnotationSource.choices, default=AnnotationSource.PANEL)
    revision = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    is_current = models.BooleanField(default=True, help_text="False once a later revision supersedes it.")
    is_blind = models.BooleanField(
        default=True,
        help_text="Made without sight of anyone else's boxes; False for a member with review rights, whose "
        "submissions are left out of the consensus and the human baseline by default.",
    )
    active_seconds = models.FloatField(null=True, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "annotator", "revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "annotator", "kind"],
                condition=models.Q(is_current=True),
                name="annotation_one_current_per_image_annotator_kind",
            ),
            models.UniqueConstraint(
                fields=["image", "annotator", "kind", "revision"], name="annotation_unique_revision"
            ),
        ]
        indexes = [models.Index(fields=["image", "kind", "is_current"])]

    def __str__(self) -> str:
        return f"{self.kind} by {self.annotator} on image {self.image_id} (rev {self.revision})"

    @property
    def box_count(self) -> int:
        return self.boxes.count()


class Box(models.Model):
    """A box in absolute image pixels, xyxy, with its label and flags."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="boxes")
    x1 = models.FloatField()
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    label = models.CharField(max_length=64, default="pedestrian")
    is_occluded = models.BooleanField(default=False)
    is_truncated = models.BooleanField(default=False)
    is_ignored = models.BooleanField(default=False, help_text="An ignore region: a crowd, or can't tell.")
    is_from_suggestion = models.BooleanField(default=False, help_text="Began as a model's suggestion.")

    class Meta:
        ordering = ["annotation", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(x2__gt=models.F("x1")) & models.Q(y2__gt=models.F("y1")),
                name="box_positive_size",
            ),
            models.CheckConstraint(condition=models.Q(x1__gte=0) & models.Q(y1__gte=0), name="box_inside_origin"),
        ]

    def __str__(self) -> str:
        return f"{self.label} [{self.x1:.1f}, {self.y1:.1f}, {self.x2:.1f}, {self.y2:.1f}]"

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


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
        ordering = ["project", "group", "split"]
        constraints = [
            models.UniqueConstraint(fields=["project", "group", "split"], name="split_tally_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.group} {self.split} = {self.count}"


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
        from django.utils import timezone

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


class ApiToken(models.Model):
    """A person's API token (`Authorization: Token <key>`). Only its sha256 is kept, and
    its first characters so that its owner and staff can tell tokens apart; the key is shown
    once, when made. A token ends when its owner's password changes (`password_marker`)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    prefix = models.CharField(max_length=8)
    key_sha256 = models.CharField(max_length=64, unique=True)
    password_marker = models.CharField(
        max_length=64, help_text="A keyed hash of the password hash the token was made under."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user}"
