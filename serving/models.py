"""Models of the serving app: API clients and their scopes, routing rules, the prediction log."""

import uuid

from django.conf import settings
from django.db import models

from datasets.models import Image
from projects.models import Project
from training.models import DeploymentTarget, ModelVersion, TargetBuild


class ApiClient(models.Model):
    """A program that calls the prediction API with a token: limited to its projects (and,
    when any are named, to those model versions), and to a number of images a minute (a
    batch counts each of its images; 0: it may not predict at all).
    Only the token's sha256 is kept; the token itself is shown once, when made."""

    name = models.CharField(max_length=120)
    token_prefix = models.CharField(max_length=12, help_text="The token's first characters, to recognise it.")
    token_sha256 = models.CharField(max_length=64, unique=True)
    projects = models.ManyToManyField(Project, related_name="api_clients")
    allowed_models = models.ManyToManyField(
        ModelVersion, blank=True, related_name="api_clients", help_text="Empty: every model of its projects."
    )
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_authenticated(self) -> bool:  # DRF's throttles and permissions read this off request.user
        return True


class RoutingRule(models.Model):
    """Which model answers: the first active rule of the project (by `order`) whose
    conditions all hold sends the request to its pinned model, or to the champion; a share
    of those requests may go to a canary instead, and a shadow model may run beside it,
    logged but never answering."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="routing_rules")
    order = models.PositiveIntegerField(default=100, help_text="Lower first.")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, null=True, blank=True, help_text="Only this client's requests."
    )
    max_width = models.PositiveIntegerField(null=True, blank=True, help_text="Only images at most this wide.")
    max_height = models.PositiveIntegerField(null=True, blank=True, help_text="Only images at most this tall.")
    model = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the champion.",
    )
    canary = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    canary_share = models.FloatField(default=0.0, help_text="Share of the matched requests the canary answers.")
    shadow = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Runs beside the answering model on every matched request; logged, never answers.",
    )  # fmt: skip
    target = models.ForeignKey(
        DeploymentTarget, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Answer with the model's build for this deployment target (its artifact, input size and "
        "threads), as the device runs it; the model's own export when it has no finished build there.",
    )  # fmt: skip

    class Meta:
        ordering = ["project", "order", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(canary_share__gte=0) & models.Q(canary_share__lte=1), name="canary_share_0_to_1"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.order}. {self.name}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        for name in ("model", "canary", "shadow"):
            chosen = getattr(self, name)
            if chosen is not None and chosen.project_id != self.project_id:
                errors[name] = "A model version of this rule's project."
        if self.target_id is not None and self.target.project_id != self.project_id:
            errors["target"] = "A deployment target of this rule's project."
        if self.canary_id is None and self.canary_share:
            errors["canary_share"] = "Name a canary model, or leave the share at 0."
        if self.client_id is not None and not self.client.projects.filter(pk=self.project_id).exists():
            errors["client"] = "This client may not use the rule's project."
        if errors:
            raise ValidationError(errors)


class PredictionLog(models.Model):
    """One answer (or one shadow run, or one refused request) of the prediction API."""

    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, related_name="+")
    client = models.ForeignKey(ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    model = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, related_name="+")
    rule = models.ForeignKey(RoutingRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    target_build = models.ForeignKey(
        TargetBuild, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The deployment target's build whose artifact answered (empty: the model's own export).",
    )  # fmt: skip
    artifact_sha256 = models.CharField(max_length=64, blank=True, help_text="Of the file that answered.")
    is_shadow = models.BooleanField(default=False)
    is_canary = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(default=200)
    error = models.CharField(max_length=64, blank=True, help_text="The error code of a refused request.")
    latency_ms = models.FloatField(null=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    brightness = models.FloatField(null=True, help_text="Mean grey level, 0-255.")
    contrast = models.FloatField(null=True, help_text="Standard deviation of the grey level.")
    boxes = models.PositiveIntegerField(default=0)
    mean_confidence = models.FloatField(null=True)
    min_confidence = models.FloatField(null=True)
    median_box_height = models.FloatField(null=True, help_text="Pixels, in the original image.")
    kept_file = models.CharField(
        max_length=255, blank=True, help_text="An uncertain upload, kept in storage to be sent to the annotators."
    )
    sent_to_annotators_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["model", "created_at"]),
            models.Index(fields=["project", "created_at"]),
            # the few rows that kept an upload: retention finds the files to delete without reading every row
            models.Index(fields=["kept_file"], condition=~models.Q(kept_file=""), name="serving_log_kept_file"),
        ]

    def __str__(self) -> str:
        return f"prediction {self.request_id} ({self.status})"


class DriftReport(models.Model):
    """One comparison of a model's recent predictions with its reference profile: the
    population stability index of each feature, and the alerts it raised."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drift_reports")
    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="drift_reports")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    predictions = models.PositiveIntegerField()
    psi = models.JSONField(default=dict, help_text="Feature -> population stability index.")
    summary = models.JSONField(default=dict, help_text="Feature -> reference and window medians.")
    alerts = models.JSONField(default=list, help_text="[{code, feature, message}], empty when nothing drifted.")
    clients = models.JSONField(
        default=list,
        help_text="Per API client with enough answers: client, predictions, psi, typical size, share under half "
        "the training pixels.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"drift of {self.model} at {self.window_end:%Y-%m-%d %H:%M}"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PredictionJob(models.Model):
    """Many stored images predicted by a worker on the `inference` queue; polled by its caller."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+")
    image_ids = models.JSONField(default=list)
    model = models.CharField(max_length=32, default="champion", help_text="A model version id, or champion.")
    conf = models.FloatField(default=0.25)
    iou = models.FloatField(default=0.7)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    done = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list, blank=True, help_text="One answer or error per image, in order.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"prediction job {self.pk} ({self.state}, {self.done}/{len(self.image_ids)})"
