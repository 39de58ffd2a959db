"""Deployment targets (where a model must run) and the gate they put on promotion.

A target names a camera's resolution, the model's input size, the CPU threads, fp32 or
int8, and the p95 latency and size budgets. Each model is measured on each target by a
build (`training/target_builds.py`, on a worker); a required target that a model fails, or
has not been measured on, keeps it from becoming the champion unless a reviewer overrides
with a written reason.

A build holds the settings it was measured with. Changing a budget judges the finished
builds again against it (the measures stand); changing what is measured (camera, input
size, threads, precision) leaves the old builds on record but no longer counts them: the
model is unmeasured on that target until it is built again.
"""

from collections.abc import Mapping

from django.db import IntegrityError, transaction

from config.errors import ValidationFailed
from projects.models import Project
from training.models import DeploymentTarget, ModelVersion, TargetBuild

CAMERA_RANGE = (32, 16384)  # pixels a side
INPUT_RANGE = (32, 2048)  # pixels, a multiple of 32
THREADS_RANGE = (1, 64)
LATENCY_RANGE = (0.0, 600_000.0)  # ms, exclusive of 0
SIZE_RANGE = (0.0, 100_000.0)  # MB, exclusive of 0
TARGET_FIELDS = (
    "name",
    "camera_width",
    "camera_height",
    "input_size",
    "threads",
    "precision",
    "latency_budget_ms",
    "size_budget_mb",
    "is_required",
)
MEASURED_FIELDS = ("camera_width", "camera_height", "input_size", "threads", "precision")
BUDGET_FIELDS = ("latency_budget_ms", "size_budget_mb")


def target_check(fields: Mapping) -> dict:
    """`fields` (any of TARGET_FIELDS) checked: the same dict, or ValidationFailed naming
    every field that is wrong and why."""
    errors: dict[str, list[str]] = {}
    unknown = set(fields) - set(TARGET_FIELDS)
    for name in sorted(unknown):
        errors[name] = ["Not a field of a deployment target."]

    def need(name: str, ok: bool, message: str) -> None:
        if name in fields and not ok:
            errors.setdefault(name, []).append(message)

    name = fields.get("name")
    need("name", isinstance(name, str) and 0 < len(name.strip()) <= 100, "A name of 1 to 100 characters.")
    for side in ("camera_width", "camera_height"):
        value = fields.get(side)
        need(side, _integer_in(value, CAMERA_RANGE), f"Pixels, from {CAMERA_RANGE[0]} to {CAMERA_RANGE[1]}.")
    size = fields.get("input_size")
    need(
        "input_size",
        _integer_in(size, INPUT_RANGE) and size % 32 == 0,
        f"A multiple of 32, from {INPUT_RANGE[0]} to {INPUT_RANGE[1]}.",
    )
    threads_message = f"From {THREADS_RANGE[0]} to {THREADS_RANGE[1]}."
    need("threads", _integer_in(fields.get("threads"), THREADS_RANGE), threads_message)
    need(
        "precision",
        fields.get("precision") in DeploymentTarget.Precision.values,
        f"One of {', '.join(DeploymentTarget.Precision.values)}.",
    )
    need("latency_budget_ms", _positive_up_to(fields.get("latency_budget_ms"), LATENCY_RANGE[1]), "Above 0 ms.")
    need("size_budget_mb", _positive_up_to(fields.get("size_budget_mb"), SIZE_RANGE[1]), "Above 0 MB.")
    need("is_required", isinstance(fields.get("is_required"), bool), "True or false.")
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first][0]}", fields=errors)
    return dict(fields)


def _integer_in(value, bounds: tuple[int, int]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]


def _positive_up_to(value, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= high


def target_create(*, project: Project, **fields) -> DeploymentTarget:
    missing = [name for name in TARGET_FIELDS if name not in fields and name not in ("precision", "is_required")]
    if missing:
        raise ValidationFailed(
            f"{missing[0]}: required.", fields={name: ["This field is required."] for name in missing}
        )
    checked = target_check(fields)
    checked["name"] = checked["name"].strip()
    try:
        with transaction.atomic():
            return DeploymentTarget.objects.create(project=project, **checked)
    except IntegrityError:
        raise _name_taken(checked["name"]) from None


def target_update(*, target: DeploymentTarget, **fields) -> DeploymentTarget:
    checked = target_check(fields)
    if "name" in checked:
        checked["name"] = checked["name"].strip()
    for name, value in checked.items():
        setattr(target, name, value)
    if not checked:
        return target
    try:
        with transaction.atomic():
            target.save(update_fields=list(checked))
            if any(name in checked for name in BUDGET_FIELDS):
                _builds_judge_again(target)
    except IntegrityError:
        raise _name_taken(checked["name"]) from None
    return target


def _builds_judge_again(target: DeploymentTarget) -> None:
    """The finished builds measured as the target now is, judged against its budgets now."""
    spec = target_settings(target)
    for build in TargetBuild.objects.filter(target=target, state=TargetBuild.State.DONE, latency_p95_ms__isnull=False):
        if not build_is_current(build, target):
            continue
        build.reasons = build_reasons(spec, p95_ms=build.latency_p95_ms, size_bytes=build.size_bytes)
        build.passed = not build.reasons
        build.settings = {**build.settings, **{name: spec[name] for name in BUDGET_FIELDS}}
        build.save(update_fields=["reasons", "passed", "settings"])


def build_is_current(build: TargetBuild, target: DeploymentTarget) -> bool:
    """Whether the build measured what the target names now (camera, input, threads, precision)."""
    return all(build.settings.get(name) == getattr(target, name) for name in MEASURED_FIELDS)


def build_reasons(spec: dict, *, p95_ms: float, size_bytes: int) -> list[str]:
    """One line per budget the build misses (empty: it passes)."""
    reasons = []
    if p95_ms > spec["latency_budget_ms"]:
        reasons.append(f"p95 latency {p95_ms:.1f} ms is over the budget of {spec['latency_budget_ms']:g} ms")
    megabytes = size_bytes / 1e6
    if megabytes > spec["size_budget_mb"]:
        reasons.append(f"size {megabytes:.2f} MB is over the budget of {spec['size_budget_mb']:g} MB")
    return reasons


def _name_taken(name: str) -> ValidationFailed:
    message = f"The project already has a target named {name!r}."
    return ValidationFailed(message, fields={"name": [message]})


def target_delete(*, target: DeploymentTarget) -> None:
    target.delete()


def latest_builds(*, model: ModelVersion) -> dict[int, TargetBuild]:
    """Target id -> the model's newest build on it that measured what the target names now."""
    latest: dict[int, TargetBuild] = {}
    for build in TargetBuild.objects.filter(model=model).select_related("target").order_by("-created_at", "-pk"):
        if build_is_current(build, build.target):
            latest.setdefault(build.target_id, build)
    return latest


def target_gate(*, model: ModelVersion) -> tuple[str | None, list[int]]:
    """(None when every required target of the model's project is passed, else why not;
    the required targets with no build yet, for the caller to measure)."""
    latest = latest_builds(model=model)
    reasons, unmeasured = [], []
    for target in DeploymentTarget.objects.filter(project_id=model.project_id, is_required=True):
        build = latest.get(target.pk)
        if build is None:
            unmeasured.append(target.pk)
            reasons.append(f"is not yet measured on required target {target.name!r} (a build was started)")
        elif build.passed is None:
            reasons.append(f"is waiting for its build on required target {target.name!r} ({build.state})")
        elif not build.passed:
            reasons.append(f"fails required target {target.name!r}: {'; '.join(build.reasons)}")
    if not reasons:
        return None, []
    return f"Model {model.number} " + "; ".join(reasons) + ".", unmeasured


def target_builds_request(*, model: ModelVersion, targets=None, only_unmeasured: bool = False) -> list[TargetBuild]:
    """Queued builds of `model` on `targets` (default: every target of its project; with
    `only_unmeasured`, those it has no current build on yet)."""
    if targets is None:
        targets = DeploymentTarget.objects.filter(project_id=model.project_id)
    if only_unmeasured:
        measured = set(latest_builds(model=model))
        targets = [target for target in targets if target.pk not in measured]
    return [
        TargetBuild.objects.create(model=model, target=target, settings=target_settings(target)) for target in targets
    ]


def target_settings(target: DeploymentTarget) -> dict:
    return {name: getattr(target, name) for name in TARGET_FIELDS}


def build_manifest(build: TargetBuild) -> dict:
    """What a device needs to run the artifact exactly as it was measured."""
    spec, evaluation = build.settings, build.evaluation or {}
    human = (evaluation.get("human") or {}).get("human_mean") or {}
    return {
        "model": {"project": build.model.project_id, "number": build.model.number},
        "target": spec.get("name"),
        "artifact": {"file": f"model-{build.model.number}-{spec.get('name', 'target')}-{spec.get('precision')}.onnx",
                     "sha256": build.artifact_sha256, "bytes": build.size_bytes, "precision": spec.get("precision")},
        "camera": {"width": spec.get("camera_width"), "height": spec.get("camera_height"),
                   "resize": "fit inside the camera frame, aspect kept, never enlarged (bilinear)"},
        "input": {
            "size": spec.get("input_size"), "layout": "NCHW", "dtype": "float32", "channels": "RGB",
            "letterbox": {"longer_side": spec.get("input_size"), "stride": 32, "rectangle": True, "padding": 114,
                          "centred": True},
            "normalisation": "pixel / 255, no mean or std",
        },
        "output": {"format": "ultralytics YOLO detect head", "nms_iou": 0.7, "max_detections": 300},
        "class_names": list(build.model.project.labels or ["pedestrian"]),
        "threads": spec.get("threads"),
        # the score where the model is as precise as the panel (the humans' operating point)
        "score_threshold": evaluation.get("operating_score"),
        "human_precision": human.get("precision"),
        "measured": {"latency_p50_ms": build.latency_p50_ms, "latency_p95_ms": build.latency_p95_ms,
                     "passed": build.passed, "reasons": build.reasons},
    }  # fmt: skip
