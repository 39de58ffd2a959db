"""Models of the training app: frozen dataset snapshots, training runs, the model registry."""

from django.conf import settings
from django.db import models

from groundtruth.models import ConsensusVersion
from projects.models import Project


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


class TrainingPolicy(models.Model):
    """A project's rules for training and promotion (one row per project, made on first use)."""

    class Metric(models.TextChoices):
        AP50 = "ap50", "AP50 (Quorum's evaluator, val)"
        AP = "ap", "AP50:95 (val)"
        MR2 = "mr2", "MR-2 (val; lower is better)"
        RECALL_AT_HUMAN = "recall_at_human_precision", "Recall at the humans' precision (val)"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="training_policy")
    metric = models.CharField(max_length=32, choices=Metric.choices, default=Metric.AP50)
    margin = models.FloatField(default=0.01, help_text="How much better than the champion a candidate must be.")
    latency_budget_ms = models.FloatField(
        null=True, blank=True, help_text="Most ms per image on the serving path (ONNX Runtime); empty: no budget."
    )
    retrain_min_new_images = models.PositiveIntegerField(
        default=100, help_text="Scheduled retraining starts when this many new ground-truth images exist."
    )
    is_retrain_scheduled = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "training policies"
        constraints = [
            models.CheckConstraint(condition=models.Q(margin__gte=0), name="training_policy_margin_non_negative")
        ]

    def __str__(self) -> str:
        return f"training policy of {self.project}"

    @property
    def is_lower_better(self) -> bool:
        return self.metric == self.Metric.MR2


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_RUN_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


class BaseWeights(models.Model):
    """A starting point for training from outside the project: an Ultralytics `.pt` an
    operator registered from the server's shell (`manage.py base_weights_add`), or a
    safetensors state dict a project admin uploaded. Stored under its sha256, checked
    again before every load."""

    class Format(models.TextChoices):
        PT = "pt", "Ultralytics .pt (registered by an operator)"
        SAFETENSORS = "safetensors", "safetensors state dict"

    name = models.CharField(max_length=100, unique=True)
    format = models.CharField(max_length=16, choices=Format.choices)
    architecture = models.CharField(max_length=100, help_text="The ultralytics .yaml it belongs to.")
    classes = models.JSONField(default=list, help_text="Its class names, in the order of its head.")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    file = models.CharField(max_length=255, help_text="Storage name: base-weights/<sha256>.<format>.")
    source = models.CharField(max_length=500, blank=True, help_text="Where it came from.")
    is_shared = models.BooleanField(
        default=False, help_text="Offered to every project admin (operator files); else only to who uploaded it."
    )
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"base weights {self.name}"


class TrainingRun(models.Model):
    """One YOLO training of a snapshot: its settings, its state, its progress epoch by epoch,
    its timings, and its evaluation once it succeeded."""

    class Init(models.TextChoices):
        SCRATCH = "scratch", "From scratch"
        CHAMPION = "champion", "From the champion's weights"
        BASE = "base", "From base weights"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started by a person"
        SCHEDULE = "schedule", "Scheduled retraining"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the project.")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="runs")
    architecture = models.CharField(max_length=64, default="yolo26n.yaml")
    imgsz = models.PositiveIntegerField(default=640, help_text="Training and evaluation image size, pixels.")
    epochs = models.PositiveIntegerField(default=50)
    batch = models.PositiveIntegerField(default=16)
    patience = models.PositiveIntegerField(default=20, help_text="Epochs without improvement before stopping.")
    seed = models.PositiveIntegerField(default=0)
    init = models.CharField(max_length=16, choices=Init.choices, default=Init.SCRATCH)
    parent_model = models.ForeignKey(
        "ModelVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs_started_from"
    )
    base_weights = models.ForeignKey(
        BaseWeights, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs_started_from"
    )
    base_weights_sha256 = models.CharField(max_length=64, blank=True, help_text="Of the base weights it started from.")
    base_start = models.CharField(
        max_length=300, blank=True, help_text="How the trainer made the first model from the base weights."
    )
    device = models.CharField(max_length=32, default="auto", help_text="auto, cpu, 0, 0,1, ...")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    train_fraction = models.FloatField(
        default=1.0, help_text="The share of the snapshot's train images it trains on (nested, stratified)."
    )
    curve = models.ForeignKey(
        "DataCurve", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs",
        help_text="The data curve this run is a point of.",
    )  # fmt: skip
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    worker = models.CharField(max_length=255, blank=True, help_text="The worker running it now.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    epoch = models.PositiveIntegerField(default=0, help_text="Epochs finished.")
    history = models.JSONField(default=list, blank=True, help_text="One entry per finished epoch.")
    eta_seconds = models.FloatField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    train_images = models.PositiveIntegerField(default=0)
    train_seconds = models.FloatField(null=True, blank=True, help_text="Seconds spent training, every attempt.")
    images_per_second = models.FloatField(null=True, blank=True)
    device_name = models.CharField(max_length=200, blank=True, help_text="What it trained on, e.g. the GPU's name.")
    peak_gpu_memory_mb = models.FloatField(null=True, blank=True, help_text="Peak GPU memory the training took.")
    timings = models.JSONField(
        default=dict, blank=True, help_text="Seconds: trainer subprocess, ONNX export, evaluation and registry."
    )
    ultralytics_metrics = models.JSONField(
        default=dict, blank=True, help_text="Ultralytics' own final validation of the best weights."
    )
    evaluation = models.JSONField(default=dict, blank=True, help_text="Quorum's evaluation on val.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="training_run_number_unique"),
            models.CheckConstraint(condition=models.Q(epochs__gte=1), name="training_run_epochs_positive"),
            models.CheckConstraint(condition=models.Q(imgsz__gte=32), name="training_run_imgsz_at_least_32"),
            models.CheckConstraint(
                condition=models.Q(train_fraction__gt=0) & models.Q(train_fraction__lte=1),
                name="training_run_fraction_0_to_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} training run {self.number}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_RUN_STATES


class ModelStage(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    CHAMPION = "champion", "Champion"
    ARCHIVED = "archived", "Archived"


class ModelVersion(models.Model):
    """The model a successful run produced: weights and their ONNX export (each with its
    sha256), its input size, its evaluation, its lineage and its stage."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the project.")
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="models")
    consensus_version = models.ForeignKey(ConsensusVersion, on_delete=models.PROTECT, related_name="models")
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    weights = models.CharField(max_length=255, help_text="Storage name of the PyTorch weights.")
    weights_sha256 = models.CharField(max_length=64)
    onnx = models.CharField(max_length=255, help_text="Storage name of the ONNX export.")
    onnx_sha256 = models.CharField(max_length=64)
    architecture = models.CharField(max_length=64)
    imgsz = models.PositiveIntegerField()
    latency_ms = models.FloatField(
        null=True, blank=True, help_text="Median ms per image, ONNX Runtime on the CPU, at imgsz."
    )
    evaluation = models.JSONField(default=dict, blank=True, help_text="Quorum's evaluation on val.")
    test_evaluation = models.JSONField(default=dict, blank=True, help_text="The latest look at the test split.")
    reference_profile = models.JSONField(
        default=dict, blank=True, help_text="Feature samples of its training inputs and val outputs, for drift."
    )
    stage = models.CharField(max_length=16, choices=ModelStage.choices, default=ModelStage.CANDIDATE)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="model_version_number_unique"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(stage="champion"), name="one_champion_per_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} model {self.number}"


class PromotionDecision(models.Model):
    """One request to make a model the champion: accepted or refused, and why. The accepted
    ones are the history of champions."""

    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="decisions")
    previous_champion = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    is_accepted = models.BooleanField()
    is_override = models.BooleanField(default=False)
    reason = models.TextField(help_text="The rule's verdict, or the reviewer's written reason for an override.")
    figures = models.JSONField(default=dict, blank=True, help_text="Metric, values, margin, latency and budget.")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-pk"]

    def __str__(self) -> str:
        return f"{'promoted' if self.is_accepted else 'refused'}: {self.model}"


class TestSetLook(models.Model):
    """One scoring of a model on the test split: who, when, why, and what it showed."""

    __test__ = False  # not a pytest test class, whatever its name says

    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="test_looks")
    reason = models.TextField()
    figures = models.JSONField(default=dict, blank=True)
    looked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    looked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-looked_at", "-pk"]

    def __str__(self) -> str:
        return f"test set look at {self.model}"


class DeploymentTarget(models.Model):
    """Where a project's model must run: a camera's resolution, the model's input size, the
    CPU threads, the precision, and the budgets a build must meet. A required target gates
    promotion."""

    class Precision(models.TextChoices):
        FP32 = "fp32", "fp32"
        INT8 = "int8", "int8 (static quantization)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deployment_targets")
    name = models.CharField(max_length=100)
    camera_width = models.PositiveIntegerField(help_text="The camera's resolution, pixels.")
    camera_height = models.PositiveIntegerField()
    input_size = models.PositiveIntegerField(help_text="The model's input, pixels, a multiple of 32.")
    threads = models.PositiveSmallIntegerField(help_text="CPU threads ONNX Runtime may use.")
    precision = models.CharField(max_length=8, choices=Precision.choices, default=Precision.FP32)
    latency_budget_ms = models.FloatField(help_text="p95 milliseconds per image, one at a time.")
    size_budget_mb = models.FloatField(help_text="The artifact's size, MB (10^6 bytes).")
    is_required = models.BooleanField(default=False, help_text="Passing it is required for promotion.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="deployment_target_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.camera_width}x{self.camera_height}, {self.input_size} px {self.precision})"


class TargetBuild(models.Model):
    """A model measured on a deployment target: its artifact (the ONNX export at the
    target's input size, quantized for int8), accuracy on val at the camera's resolution,
    latency on the target's threads, size, and the verdict with its reasons."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="target_builds")
    target = models.ForeignKey(DeploymentTarget, on_delete=models.CASCADE, related_name="builds")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    # the target's settings as measured (a target edited later does not rewrite a build)
    settings = models.JSONField(default=dict)
    artifact = models.CharField(max_length=255, blank=True, help_text="Storage name of the ONNX artifact.")
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    calibration_images = models.PositiveIntegerField(default=0, help_text="Train images int8 was calibrated on.")
    evaluation = models.JSONField(default=dict, blank=True, help_text="On val at the camera's resolution.")
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True, help_text="None until measured.")
    reasons = models.JSONField(default=list, blank=True, help_text="Why it failed, one line per budget missed.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["model", "target", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.model} on {self.target.name} ({self.state})"


class DataCurve(models.Model):
    """ "Is more data worth it?": the same run settings trained on nested, stratified
    fractions of one snapshot's train split, the points fitted and extrapolated, and where
    more annotation would pay most."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="data_curves")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the project.")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="curves")
    run_settings = models.JSONField(default=dict, help_text="The run settings every point trains with.")
    fractions = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    result = models.JSONField(default=dict, blank=True, help_text="Points, fits, backtest, gains, where to annotate.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="data_curve_number_unique")]

    def __str__(self) -> str:
        return f"{self.project} data curve {self.number}"
