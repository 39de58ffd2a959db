"""Ground truth: every person's recorded boxes (annotations, immutable, corrected by new
revisions) and the versioned consensus computed from them. Each version has its own
parameters, and a project has one current version that later submissions keep up to date
image by image."""

from django.conf import settings
from django.db import models

from datasets.models import Image
from projects.models import Project


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
        db_table = "annotation_annotation"
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
        db_table = "annotation_box"
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


class VersionState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImageState(models.TextChoices):
    AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"
    NEEDS_REVIEW = "needs_review", "Needs review"
    ADJUDICATED = "adjudicated", "Adjudicated"


class BoxSource(models.TextChoices):
    CONSENSUS = "consensus", "Consensus"
    REVIEWER = "reviewer", "Reviewer"


class ConsensusVersion(models.Model):
    """One consensus computation of a project: its parameters, its state, its summary."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus_versions")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the project.")
    iou_threshold = models.FloatField(default=0.5)
    quorum = models.FloatField(
        null=True, blank=True, help_text="Share of the annotators a box needs; empty: a strict majority."
    )
    fuse = models.CharField(max_length=8, default="median", help_text="median or mean, per edge.")
    reliability_weighted = models.BooleanField(
        default=False, help_text="Weight annotators by their EM-estimated reliability."
    )
    accept_f1 = models.FloatField(
        default=0.8, help_text="Images at or above this pairwise F1, with no uncertain cluster, are auto-accepted."
    )
    include_not_blind = models.BooleanField(
        default=False,
        help_text="Count the submissions of members with review rights, who could see others' boxes (left out by "
        "default: they are not independent of the panel).",
    )
    code_version = models.CharField(max_length=40, help_text="Which consensus code computed it.")
    state = models.CharField(max_length=16, choices=VersionState.choices, default=VersionState.PENDING)
    error = models.TextField(blank=True)
    is_current = models.BooleanField(default=False)
    alpha = models.FloatField(null=True, blank=True, help_text="Krippendorff's alpha over the version's images.")
    alpha_low = models.FloatField(null=True, blank=True)
    alpha_high = models.FloatField(null=True, blank=True)
    pairwise_f1 = models.FloatField(null=True, blank=True)
    mean_iou = models.FloatField(null=True, blank=True)
    reliability = models.JSONField(default=dict, blank=True, help_text="Annotator id -> EM rates, when weighted.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent loading, computing, writing.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="consensus_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="consensus_version_number_unique"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(is_current=True), name="one_current_consensus_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} consensus v{self.number}"


class ChunkState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class ConsensusChunk(models.Model):
    """One slice of a version's complete images, computed by one task on the groundtruth
    queue; the version is finished from its chunks' counts once they are all done
    (`groundtruth.computing`)."""

    version = models.ForeignKey(ConsensusVersion, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField(help_text="0, 1, ... in image id order.")
    first = models.PositiveIntegerField(help_text="Position of the chunk's first image among the version's images.")
    image_ids = models.JSONField(help_text="The images it computes, in id order.")
    state = models.CharField(max_length=16, choices=ChunkState.choices, default=ChunkState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that ran it last.")
    counts = models.BinaryField(
        null=True, blank=True, help_text="Its images' agreement and baseline counts (numpy .npz, no pickles)."
    )
    seconds = models.JSONField(default=dict, blank=True, help_text="Seconds spent loading, computing, writing.")
    peak_rss_mb = models.FloatField(null=True, blank=True, help_text="The worker's peak memory when it finished.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="consensus_chunk_unique")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.version}"


class ImageConsensus(models.Model):
    """One image's result in one version: its state and how far its annotators agreed."""

    version = models.ForeignKey(ConsensusVersion, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="consensus")
    state = models.CharField(max_length=16, choices=ImageState.choices)
    annotators = models.PositiveSmallIntegerField()
    f1 = models.FloatField(null=True, blank=True, help_text="Pairwise F1 of the image's annotators.")
    mean_iou = models.FloatField(null=True, blank=True)
    uncertain = models.PositiveIntegerField(default=0, help_text="Clusters below the quorum.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "image"], name="image_consensus_unique")]
        indexes = [models.Index(fields=["version", "state"])]

    def __str__(self) -> str:
        return f"{self.image_id} in v{self.version.number}: {self.state}"


class GroundTruthBox(models.Model):
    """A consensus box (or a below-quorum cluster kept for review), pixel xyxy."""

    image_consensus = models.ForeignKey(ImageConsensus, on_delete=models.CASCADE, related_name="boxes")
    x1 = models.FloatField()
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    support = models.PositiveSmallIntegerField(help_text="Annotators who drew it.")
    score = models.FloatField(help_text="support / annotators x mean IoU of the members to the box.")
    spread = models.JSONField(default=list, help_text="Per-edge spread of the members, in box heights.")
    annotators = models.JSONField(default=list, help_text="Ids of the users whose boxes are in it.")
    is_ignore = models.BooleanField(default=False, help_text="An ignore region agreed by the quorum.")
    is_uncertain = models.BooleanField(default=False, help_text="Below the quorum: for review, not ground truth.")
    source = models.CharField(max_length=16, choices=BoxSource.choices, default=BoxSource.CONSENSUS)

    class Meta:
        ordering = ["image_consensus", "id"]

    def __str__(self) -> str:
        return f"({self.x1:.0f}, {self.y1:.0f}, {self.x2:.0f}, {self.y2:.0f}) x{self.support}"


class AgreementReport(models.Model):
    """A version's agreement report (see `groundtruth.reports`), built when it is computed."""

    version = models.OneToOneField(ConsensusVersion, on_delete=models.CASCADE, related_name="report")
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"report of {self.version}"


class Adjudication(models.Model):
    """A reviewer's settlement of one image: the boxes that are its ground truth, whatever
    the consensus parameters, until the reviewer asks for it to be redone (is_active off)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="adjudications")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    boxes = models.JSONField(help_text="[[x1, y1, x2, y2, is_ignore], ...] in image pixels.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["image"], condition=models.Q(is_active=True), name="one_active_adjudication_per_image"
            )
        ]

    def __str__(self) -> str:
        return f"adjudication of image {self.image_id} by {self.reviewer_id}"
