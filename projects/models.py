"""Projects, and who works on them in which role."""

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
        db_table = "annotation_project"
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
        db_table = "annotation_membership"
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"


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
        db_table = "annotation_apitoken"
        ordering = ["user"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user}"
