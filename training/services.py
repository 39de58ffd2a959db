"""Writes of the training app: start, cancel and settle training runs; promote models; look
at the test split; schedule retraining."""

import logging
import math
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from config.errors import Conflict, ValidationFailed
from groundtruth.models import ConsensusVersion, ImageConsensus, VersionState
from projects.models import Project
from training.architectures import architectures
from training.base_weights import base_weights_for
from training.evaluation import detections_predict, model_evaluate, split_images
from training.models import (
    FINISHED_RUN_STATES,
    BaseWeights,
    ModelStage,
    ModelVersion,
    PromotionDecision,
    RunState,
    TestSetLook,
    TrainingPolicy,
    TrainingRun,
)
from training.runner import verified_onnx_path
from training.snapshots import snapshot_create
from training.targets import target_gate

logger = logging.getLogger(__name__)

IMGSZ_RANGE = (32, 2048)
EPOCHS_RANGE = (1, 1000)
BATCH_RANGE = (0, 512)  # 0: sized to the GPU's memory (ultralytics' autobatch); 16 on the CPU
PATIENCE_RANGE = (0, 1000)
# The most new ground-truth images a scheduled retraining may wait for.
RETRAIN_IMAGES_MAX = 10_000_000
# The longest written reason (a promotion override, a look at the test split), characters.
REASON_MAX = 2000
SEED_RANGE = (0, 2**31 - 1)


def training_policy_get(*, project: Project) -> TrainingPolicy:
    policy, _ = TrainingPolicy.objects.get_or_create(project=project)
    return policy


def training_policy_update(*, project: Project, **fields) -> TrainingPolicy:
    policy = training_policy_get(project=project)
    if "metric" in fields and fields["metric"] not in TrainingPolicy.Metric.values:
        choices = ", ".join(TrainingPolicy.Metric.values)
        raise ValidationFailed("Unknown metric.", fields={"metric": [f"One of {choices}."]})
    for name in ("margin", "latency_budget_ms"):
        value = fields.get(name)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValidationFailed(f"{name} must be a finite number, at least 0.", fields={name: ["At least 0."]})
    retrain = fields.get("retrain_min_new_images")
    if retrain is not None and not 0 <= retrain <= RETRAIN_IMAGES_MAX:
        message = f"Between 0 and {RETRAIN_IMAGES_MAX}."
        raise ValidationFailed(f"retrain_min_new_images: {message}", fields={"retrain_min_new_images": [message]})
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def training_run_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    architecture: str = "yolo26n.yaml",
    imgsz: int = 640,
    epochs: int = 50,
    batch: int = 16,
    patience: int = 20,
    seed: int = 0,
    init: str = TrainingRun.Init.SCRATCH,
    device: str = "auto",
    trigger: str = TrainingRun.Trigger.MANUAL,
    base_weights: int | None = None,
    train_fraction: float = 1.0,
) -> TrainingRun:
    """A queued run on a snapshot of the project's current consensus version, sent to the
    `training` queue after commit. Everything is checked before the snapshot is written."""
    problems = {}
    if architecture not in architectures():
        problems["architecture"] = [f"{architecture!r} is not a detection .yaml that ships with ultralytics."]
    for name, value, (low, high) in (
        ("imgsz", imgsz, IMGSZ_RANGE),
        ("epochs", epochs, EPOCHS_RANGE),
        ("batch", batch, BATCH_RANGE),
        ("patience", patience, PATIENCE_RANGE),
        ("seed", seed, SEED_RANGE),
    ):
        if not low <= value <= high:
            problems[name] = [f"Between {low} and {high}."]
    if imgsz % 32:
        problems.setdefault("imgsz", []).append("A multiple of 32 (the network's stride).")
    if not (isinstance(train_fraction, int | float) and 0 < train_fraction <= 1):
        problems["train_fraction"] = ["A share of the train images in (0, 1]."]
    if init not in TrainingRun.Init.values:
        problems["init"] = ["scratch, champion or base."]
    base = None
    if init == TrainingRun.Init.BASE:
        is_id = isinstance(base_weights, int) and 0 < base_weights <= 2**63 - 1
        # a run nobody started (the demo, a schedule) may use the shared ones
        usable = base_weights_for(user) if user is not None else BaseWeights.objects.filter(is_shared=True)
        base = usable.filter(pk=base_weights).first() if is_id else None
        if base is None:
            problems["base_weights"] = ["Choose base weights you may use (GET /api/v1/base-weights/)."]
        else:
            architecture = base.architecture if base.architecture in architectures() else architecture
    elif base_weights is not None:
        problems["base_weights"] = ["Only with init=base."]
    if not device or len(device) > 32 or not all(c.isalnum() or c in ",:" for c in device):
        problems["device"] = ["auto, cpu, mps, or CUDA device numbers such as 0 or 0,1."]
    if problems:
        raise ValidationFailed(next(iter(problems.values()))[0], fields=problems)
    version = ConsensusVersion.objects.filter(project=project, is_current=True).first()
    if version is None or version.state != VersionState.DONE:
        raise Conflict("The project has no finished consensus version to train on.", code="no_ground_truth")
    parent = None
    if init == TrainingRun.Init.CHAMPION:
        parent = ModelVersion.objects.filter(project=project, stage=ModelStage.CHAMPION).first()
        if parent is None:
            raise Conflict("The project has no champion to start from; start from scratch.", code="no_champion")
    if not ImageConsensus.objects.filter(version=version, image__split="train").exists():
        raise Conflict("The current consensus version has no train image.", code="no_train_images")
    snapshot = snapshot_create(version=version, user=user)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # numbers are handed out one at a time
        number = (TrainingRun.objects.filter(project=project).aggregate(top=Max("number"))["top"] or 0) + 1
        run = TrainingRun.objects.create(
            project=project,
            number=number,
            snapshot=snapshot,
            architecture=architecture,
            imgsz=imgsz,
            epochs=epochs,
            batch=batch,
            patience=patience,
            seed=seed,
            init=init,
            parent_model=parent,
            base_weights=base,
            base_weights_sha256=base.sha256 if base else "",
            device=device,
            trigger=trigger,
            train_fraction=train_fraction,
            created_by=user,
        )
    return run


def training_run_cancel(*, run: TrainingRun, user: AbstractBaseUser) -> TrainingRun:
    """Cancel a run: a queued one at once, a running one by its worker within one epoch."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.state in FINISHED_RUN_STATES:
            raise Conflict(f"Run {run.number} is {run.state}; only a queued or running run can be cancelled.")
        now = timezone.now()
        run.cancel_requested_at = run.cancel_requested_at or now
        if run.state == RunState.QUEUED:
            run.state, run.finished_at = RunState.CANCELLED, now
        run.save(update_fields=["cancel_requested_at", "state", "finished_at"])
    logger.info("training run %s: cancel requested by %s", run.pk, user)
    return run


def training_runs_reap() -> dict[str, list[int]]:
    """Settle the running runs whose worker stopped beating: sent again while they have
    attempts left (the next attempt resumes from last.pt), failed "worker lost" after."""
    stale_before = timezone.now() - timedelta(seconds=settings.QUORUM_TRAINING_STALE_SECONDS)
    settled: dict[str, list[int]] = {"retried": [], "failed": [], "cancelled": []}
    with transaction.atomic():
        stale = (
            TrainingRun.objects.select_for_update(skip_locked=True)
            .filter(state=RunState.RUNNING)
            .filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True))
        )
        for run in stale:
            lost = f"worker lost ({run.worker or 'unknown'}) at epoch {run.epoch} of {run.epochs}"
            run.log_tail += f"\n[quorum] {lost}; no heartbeat since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            if run.cancel_requested_at:
                run.state, run.finished_at = RunState.CANCELLED, timezone.now()
                settled["cancelled"].append(run.pk)
            elif run.attempts >= settings.QUORUM_TRAINING_MAX_ATTEMPTS:
                run.state, run.finished_at = RunState.FAILED, timezone.now()
                run.error = f"Worker lost: {run.attempts} attempts ended without a result (last: {lost})."
                settled["failed"].append(run.pk)
            else:
                run.state, run.worker = RunState.QUEUED, ""
                settled["retried"].append(run.pk)
            run.save(update_fields=["state", "finished_at", "error", "worker", "log_tail"])
    for outcome, ids in settled.items():
        if ids:
            logger.warning("training runs %s: %s (no heartbeat)", ids, outcome)
    return settled


def policy_figure(model: ModelVersion, metric: str) -> float | None:
    """The value of the policy's metric in a model's val evaluation."""
    evaluation = model.evaluation or {}
    if metric in ("ap50", "ap"):
        return (evaluation.get("coco") or {}).get(metric)
    if metric == "mr2":
        return evaluation.get("mr2")
    if metric == "recall_at_human_precision":
        return ((evaluation.get("human") or {}).get("model_mean") or {}).get("recall_at_precision")
    raise ValueError(metric)


def promotion_decide(
    *, model: ModelVersion, user: AbstractBaseUser, override_reason: str | None = None
) -> PromotionDecision:
    """Decide whether `model` becomes the champion. The rule: it beats the champion on the
    project's metric by at least the margin and meets the latency budget. A refusal is
    recorded and returned (is_accepted False) with the reason; `override_reason` (a
    reviewer's written reason) promotes anyway. An accepted model archives the previous
    champion (`training.launch.model_promote` then has the test split scored once)."""
    policy = training_policy_get(project=model.project)
    if override_reason is not None and not override_reason.strip():
        raise ValidationFailed("An override needs a written reason.", fields={"override_reason": ["Say why."]})
    if override_reason is not None and len(override_reason) > REASON_MAX:
        message = f"A reason is at most {REASON_MAX} characters."
        raise ValidationFailed(message, fields={"override_reason": [message]})
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=model.project_id)
        model = ModelVersion.objects.get(pk=model.pk)
        if model.stage == ModelStage.CHAMPION:
            raise Conflict(f"Model {model.number} is already the champion.", code="already_champion")
        champion = ModelVersion.objects.filter(project=model.project, stage=ModelStage.CHAMPION).first()
        verdict, figures = _promotion_rule(model, champion, policy)
        gate, _ = target_gate(model=model)
        if gate is not None:
            verdict, figures["targets"] = gate, gate
        is_override = verdict is not None and override_reason is not None
        accepted = verdict is None or is_override
        decision = PromotionDecision.objects.create(
            model=model,
            previous_champion=champion,
            is_accepted=accepted,
            is_override=is_override,
            reason=override_reason.strip() if is_override else (verdict or figures["summary"]),
            figures={**figures, "rule": verdict or "passed"},
            decided_by=user,
        )
        if accepted:
            if champion is not None:
                champion.stage = ModelStage.ARCHIVED
                champion.save(update_fields=["stage"])
            model.stage, model.promoted_by, model.promoted_at = ModelStage.CHAMPION, user, timezone.now()
            model.save(update_fields=["stage", "promoted_by", "promoted_at"])
    return decision


def _promotion_rule(model: ModelVersion, champion: ModelVersion | None, policy: TrainingPolicy):
    """(None when the rule passes, else why not; the figures it looked at)."""
    metric = policy.metric
    value = policy_figure(model, metric)
    figures = {
        "metric": metric,
        "candidate": value,
        "champion": policy_figure(champion, metric) if champion else None,
        "champion_model": champion.number if champion else None,
        "margin": policy.margin,
        "latency_ms": model.latency_ms,
        "latency_budget_ms": policy.latency_budget_ms,
    }
    label = TrainingPolicy.Metric(metric).label
    budget = policy.latency_budget_ms
    if budget is not None and (model.latency_ms is None or model.latency_ms > budget):
        return (
            f"Too slow: {_ms(model.latency_ms)} per image is over the budget of {policy.latency_budget_ms:.1f} ms.",
            figures,
        )
    if value is None:
        return f"Model {model.number} has no {label} to compare.", figures
    if champion is None:
        figures["summary"] = f"First champion: {label} {value:.4f}."
        return None, figures
    current = figures["champion"]
    if current is not None:
        improvement = current - value if policy.is_lower_better else value - current
        if improvement < policy.margin:
            return (
                f"Not better by the margin: {label} {value:.4f} against the champion's (model {champion.number}) "
                f"{current:.4f}; it must be {'lower' if policy.is_lower_better else 'higher'} by at least "
                f"{policy.margin:.4f}.",
                figures,
            )
    figures["summary"] = f"{label} {value:.4f} against {_fmt(current)} (model {champion.number}): better by the margin."
    return None, figures


def _ms(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.1f} ms"


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def test_look_request(*, model: ModelVersion, user: AbstractBaseUser, reason: str) -> TestSetLook:
    """Log a look at the test split (who, when, why); `training.launch.test_look_start` has a
    worker score it."""
    if not reason or not reason.strip():
        raise ValidationFailed("Say why the test set is consulted.", fields={"reason": ["Required."]})
    if len(reason) > REASON_MAX:
        message = f"A reason is at most {REASON_MAX} characters."
        raise ValidationFailed(message, fields={"reason": [message]})
    with transaction.atomic():
        return TestSetLook.objects.create(model=model, looked_by=user, reason=reason.strip()[:2000])


def test_look_compute(*, look_id: int) -> TestSetLook | None:
    """Score the look's model on the test split, with the evaluator the val split used."""
    look = TestSetLook.objects.select_related("model__consensus_version").filter(pk=look_id).first()
    if look is None or look.figures:
        return look
    model = look.model
    version = model.consensus_version
    image_ids = split_images(version=version, split="test")
    with tempfile.TemporaryDirectory(prefix="quorum-test-look-") as folder:
        onnx = verified_onnx_path(model, Path(folder))
        detections = detections_predict(onnx=onnx, sha256=model.onnx_sha256, image_ids=image_ids, imgsz=model.imgsz)
    figures = model_evaluate(version=version, image_ids=image_ids, detections=detections)
    figures["source"] = "boxes.metrics"
    TestSetLook.objects.filter(pk=look.pk).update(figures=figures)
    ModelVersion.objects.filter(pk=model.pk).update(test_evaluation={**figures, "look": look.pk})
    look.figures = figures
    return look


def training_runs_schedule() -> list[TrainingRun]:
    """Start a run from the champion in every project whose policy schedules retraining and
    whose current ground truth has at least `retrain_min_new_images` train and val images
    more than the champion's snapshot, unless one of its runs is queued or running."""
    started = []
    for policy in TrainingPolicy.objects.filter(is_retrain_scheduled=True).select_related("project"):
        project = policy.project
        champion = ModelVersion.objects.filter(project=project, stage=ModelStage.CHAMPION).select_related("run").first()
        if champion is None:
            continue
        if TrainingRun.objects.filter(project=project, state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
            continue
        version = ConsensusVersion.objects.filter(project=project, is_current=True, state=VersionState.DONE).first()
        if version is None:
            continue
        now_images = ImageConsensus.objects.filter(version=version, image__split__in=["train", "val"]).count()
        new_images = now_images - sum(champion.snapshot.images.values())
        if new_images < policy.retrain_min_new_images:
            continue
        config = champion.run
        started.append(
            training_run_create(
                project=project,
                user=None,
                architecture=config.architecture,
                imgsz=config.imgsz,
                epochs=config.epochs,
                batch=config.batch,
                patience=config.patience,
                seed=config.seed,
                init=TrainingRun.Init.CHAMPION,
                device=config.device,
                trigger=TrainingRun.Trigger.SCHEDULE,
            )
        )
        logger.info("retraining %s: %s new ground-truth images since model %s", project, new_images, champion.number)
    return started
