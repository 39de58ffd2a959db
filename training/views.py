"""Pages of the training app: a project's runs and models, one run (live), one model."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError, ValidationFailed
from projects.models import Role
from projects.selectors import project_role, project_with_role, role_at_least
from training.architectures import architectures
from training.base_weights import base_weights_for, base_weights_upload, may_upload_base_weights
from training.data_curves import DEFAULT_FRACTIONS, curve_chart, data_curve_cancel, data_curve_progress
from training.launch import data_curve_start, model_promote, target_builds_start, test_look_start, training_run_start
from training.models import DeploymentTarget, ModelStage, ModelVersion, TrainingPolicy, TrainingRun
from training.selectors import (
    champion_get,
    champion_history,
    data_curve_get,
    data_curves,
    deployment_targets,
    marginal_gain,
    model_version_get,
    model_versions,
    training_run_get,
    training_runs,
)
from training.services import (
    policy_figure,
    training_policy_get,
    training_policy_update,
    training_run_cancel,
)
from training.targets import latest_builds, target_create

RUN_FORM_DEFAULTS = {
    "architecture": "yolo26n.yaml",
    "imgsz": "640",
    "epochs": "50",
    "batch": "16",
    "patience": "20",
    "seed": "0",
    "init": "scratch",
    "base_weights": "",
    "device": "auto",
}


@login_required
@require_http_methods(["GET", "POST"])
def training_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project's training runs, its models and champions, and (admins) a form for a new run."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    is_admin = role_at_least(project_role(project=project, user=request.user), Role.ADMIN)
    form = dict(RUN_FORM_DEFAULTS)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        form = {name: request.POST.get(name, default).strip() for name, default in RUN_FORM_DEFAULTS.items()}
        try:
            run = training_run_start(
                project=project,
                user=request.user,
                architecture=form["architecture"],
                imgsz=_int(form["imgsz"], "image size"),
                epochs=_int(form["epochs"], "epochs"),
                batch=_int(form["batch"], "batch"),
                patience=_int(form["patience"], "patience"),
                seed=_int(form["seed"], "seed"),
                init=form["init"],
                base_weights=_int(form["base_weights"], "base weights") if form["init"] == "base" else None,
                device=form["device"],
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Run {run.number} is queued on the training workers.")
            return redirect("training-run", run_id=run.pk)
    policy = training_policy_get(project=project)
    champion = champion_get(project=project)
    models = [(model, policy_figure(model, policy.metric)) for model in model_versions(project=project)]
    context = {
        "project": project,
        "is_admin": is_admin,
        "runs": training_runs(project=project),
        "models": models,
        "champion": champion,
        "history": champion_history(project=project),
        "policy": policy,
        "metrics": TrainingPolicy.Metric.choices,
        "form": form,
        "architectures": architectures(),
        "base_weights": base_weights_for(request.user) if is_admin else [],
    }
    return render(request, "training/training.html", context)


@login_required
@require_POST
def policy_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Change the promotion rule and the retraining schedule (admins)."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.ADMIN)
    try:
        budget = request.POST.get("latency_budget_ms", "").strip()
        training_policy_update(
            project=project,
            metric=request.POST.get("metric", "ap50"),
            margin=_float(request.POST.get("margin", "0.01"), "margin", low=0.0),
            latency_budget_ms=_float(budget, "latency budget", low=0.0) if budget else None,
            retrain_min_new_images=_int(request.POST.get("retrain_min_new_images", "100"), "new images", low=0),
            is_retrain_scheduled=request.POST.get("is_retrain_scheduled") == "on",
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Promotion rule and retraining schedule saved.")
    return redirect("project-training", project_id=project.pk)


@login_required
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run: progress bar, learning curves and log tail (refreshed by training.js), then
    its evaluation against the humans."""
    run = _run_for(request, run_id, Role.REVIEWER)
    role = project_role(project=run.project, user=request.user)
    model = getattr(run, "model_version", None) if run.state == "succeeded" else None
    context = {
        "project": run.project,
        "run": run,
        "model": model,
        "is_admin": role_at_least(role, Role.ADMIN),
        "evaluation": run.evaluation or None,
        "gain": marginal_gain(run.history),
    }
    return render(request, "training/run.html", context)


@login_required
@require_POST
def run_cancel_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id, Role.ADMIN)
    try:
        training_run_cancel(run=run, user=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Run {run.number}: cancel requested; it stops within one epoch.")
    return redirect("training-run", run_id=run.pk)


@login_required
def model_page(request: HttpRequest, model_id: int) -> HttpResponse:
    """One model: its evaluation against the humans, lineage, promotion and test-set looks."""
    model = _model_for(request, model_id, Role.REVIEWER)
    policy = training_policy_get(project=model.project)
    champion = champion_get(project=model.project)
    context = {
        "project": model.project,
        "model": model,
        "run": model.run,
        "evaluation": model.evaluation or None,
        "test": model.test_evaluation or None,
        "looks": model.test_looks.select_related("looked_by"),
        "decisions": model.decisions.select_related("decided_by", "previous_champion"),
        "policy": policy,
        "metric_label": TrainingPolicy.Metric(policy.metric).label,
        "value": policy_figure(model, policy.metric),
        "champion": champion,
        "champion_value": policy_figure(champion, policy.metric) if champion else None,
        "is_champion": model.stage == ModelStage.CHAMPION,
        "builds": _latest(model),
    }
    context["model_builds"] = [(model, context["builds"])]
    return render(request, "training/model.html", context)


@login_required
@require_POST
def model_promote_page(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_for(request, model_id, Role.REVIEWER)
    reason = request.POST.get("override_reason", "").strip()
    is_override = request.POST.get("override") == "1"
    try:
        decision = model_promote(model=model, user=request.user, override_reason=reason if is_override else None)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if decision.is_accepted:
            messages.success(request, f"Model {model.number} is the champion; the test split is being scored.")
        else:
            messages.error(request, f"Not promoted. {decision.reason}")
    return redirect("model", model_id=model.pk)


@login_required
@require_POST
def model_test_look_page(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_for(request, model_id, Role.REVIEWER)
    try:
        test_look_start(model=model, user=request.user, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Logged; the test split is being scored.")
    return redirect("model", model_id=model.pk)


def _run_for(request: HttpRequest, run_id: int, required: Role) -> TrainingRun:
    """The run (404 outside the user's projects), PermissionDenied below `required`."""
    run = training_run_get(run_id=run_id, user=request.user)
    if not role_at_least(project_role(project=run.project, user=request.user), required):
        raise PermissionDenied
    return run


def _model_for(request: HttpRequest, model_id: int, required: Role) -> ModelVersion:
    """The model (404 outside the user's projects), PermissionDenied below `required`."""
    model = model_version_get(model_id=model_id, user=request.user)
    if not role_at_least(project_role(project=model.project, user=request.user), required):
        raise PermissionDenied
    return model


def _int(value: str, field: str, *, low: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed(f"{field} must be a whole number.", fields={field: ["A whole number."]}) from None
    if low is not None and number < low:
        raise ValidationFailed(f"{field} must be at least {low}.", fields={field: [f"At least {low}."]})
    return number


def _float(value: str, field: str, *, low: float | None = None) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValidationFailed(f"{field} must be a number.", fields={field: ["A number."]}) from None
    if number != number or (low is not None and number < low):
        raise ValidationFailed(f"{field} must be at least {low}.", fields={field: [f"At least {low}."]})
    return number


@login_required
@require_http_methods(["GET", "POST"])
def base_weights_page(request: HttpRequest) -> HttpResponse:
    """The base weights a project admin may start runs from, and a form to upload a
    safetensors file (project admins and staff)."""
    if not may_upload_base_weights(request.user):
        raise PermissionDenied
    status = 200
    form = {"name": "", "architecture": "yolo26n.yaml", "classes": "pedestrian"}
    if request.method == "POST":
        form = {name: request.POST.get(name, default).strip() for name, default in form.items()}
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationFailed("Choose a .safetensors file.", fields={"file": ["Required."]})
            base = base_weights_upload(user=request.user, file=upload, size=upload.size, **form)
        except DomainError as error:
            messages.error(request, error.message)
            status = 400
        else:
            messages.success(request, f"{base.name} is registered, sha256 {base.sha256}.")
            return redirect("base-weights")
    context = {
        "bases": base_weights_for(request.user).select_related("added_by"),
        "architectures": architectures(),
        "form": form,
    }
    return render(request, "training/base_weights.html", context, status=status)


TARGET_INTEGERS = ("camera_width", "camera_height", "input_size", "threads")
TARGET_FLOATS = ("latency_budget_ms", "size_budget_mb")


@login_required
@require_http_methods(["GET", "POST"])
def deployment_targets_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project's deployment targets and how its recent models fare on them (reviewers);
    admins add targets here."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    is_admin = role_at_least(project_role(project=project, user=request.user), Role.ADMIN)
    errors, form, status = {}, {}, 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        form = {name: request.POST.get(name, "").strip() for name in (*TARGET_INTEGERS, *TARGET_FLOATS)}
        form |= {"name": request.POST.get("name", ""), "precision": request.POST.get("precision", "")}
        try:
            target = target_create(
                project=project,
                **{name: _typed(form[name], int) for name in TARGET_INTEGERS},
                **{name: _typed(form[name], float) for name in TARGET_FLOATS},
                name=form["name"],
                precision=form["precision"],
                is_required=request.POST.get("is_required") == "on",
            )
        except ValidationFailed as error:
            errors, status = error.fields or {"name": [error.message]}, 400
        else:
            messages.success(request, f"Target {target.name} added; models are measured on it when promoted, or now.")
            return redirect("project-deployment-targets", project_id=project.pk)
    models = list(model_versions(project=project)[:5])
    context = {
        "project": project,
        "is_admin": is_admin,
        "targets": deployment_targets(project=project),
        "rows": [(model, _latest(model)) for model in models],
        "errors": errors,
        "form": form,
        "precisions": DeploymentTarget.Precision.choices,
    }
    return render(request, "training/deployment_targets.html", context, status=status)


def _typed(value: str, kind):
    """`value` as an int or float when it reads as one; else as given, for the service to refuse."""
    try:
        return kind(value)
    except ValueError:
        return value


def _latest(model: ModelVersion) -> list:
    return sorted(latest_builds(model=model).values(), key=lambda build: build.target.name)


@login_required
@require_POST
def model_targets_measure_page(request: HttpRequest, model_id: int) -> HttpResponse:
    """Measure the model on every deployment target of its project again (reviewers)."""
    model = _model_for(request, model_id, Role.REVIEWER)
    builds = target_builds_start(model=model)
    if builds:
        messages.success(request, f"Measuring model {model.number} on {len(builds)} target(s); refresh in a minute.")
    else:
        messages.error(request, "The project has no deployment target yet.")
    return redirect("model", model_id=model.pk)


@login_required
@require_http_methods(["GET", "POST"])
def data_curves_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """ "Is more data worth it?": the project's data curves; admins start one from a run."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    is_admin = role_at_least(project_role(project=project, user=request.user), Role.ADMIN)
    runs = list(training_runs(project=project))
    form = {"run": str(runs[0].pk) if runs else "", "fractions": ", ".join(f"{f:g}" for f in DEFAULT_FRACTIONS)}
    status = 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        form = {"run": request.POST.get("run", ""), "fractions": request.POST.get("fractions", "")}
        run = next((run for run in runs if str(run.pk) == form["run"]), None)
        try:
            if run is None:
                raise ValidationFailed("Choose a run whose settings the curve repeats.", fields={"run": ["A run."]})
            fractions = [_float(part, "fractions") for part in form["fractions"].replace(";", ",").split(",") if part]
            curve = data_curve_start(project=project, user=request.user, from_run=run, fractions=fractions)
        except DomainError as error:
            messages.error(request, error.message)
            status = 400
        else:
            messages.success(request, f"Data curve {curve.number}: {len(curve.fractions)} runs queued.")
            return redirect("data-curve", curve_id=curve.pk)
    context = {
        "project": project,
        "is_admin": is_admin,
        "curves": [(curve, data_curve_progress(curve)) for curve in data_curves(project=project)],
        "runs": runs,
        "form": form,
    }
    return render(request, "training/data_curves.html", context, status=status)


@login_required
def data_curve_page(request: HttpRequest, curve_id: int) -> HttpResponse:
    """One data curve: progress, then the points, the fits, what 2x and 4x the data would
    buy, the images needed to reach the panel, and the conditions ranked."""
    curve = data_curve_get(curve_id=curve_id, user=request.user)
    role = project_role(project=curve.project, user=request.user)
    if not role_at_least(role, Role.REVIEWER):
        raise PermissionDenied
    result = curve.result or {}
    context = {
        "project": curve.project,
        "curve": curve,
        "is_admin": role_at_least(role, Role.ADMIN),
        "progress": data_curve_progress(curve),
        "runs": curve.runs.order_by("train_fraction"),
        "result": result,
        "recall": (result.get("figures") or {}).get("recall") or {},
        "ap50": (result.get("figures") or {}).get("ap50") or {},
        "chart": {"recall": curve_chart(result, "recall"), "ap50": curve_chart(result, "ap50")},
    }
    return render(request, "training/data_curve.html", context)


@login_required
@require_POST
def data_curve_cancel_page(request: HttpRequest, curve_id: int) -> HttpResponse:
    curve = data_curve_get(curve_id=curve_id, user=request.user)
    if not role_at_least(project_role(project=curve.project, user=request.user), Role.ADMIN):
        raise PermissionDenied
    try:
        data_curve_cancel(curve=curve, user=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Data curve {curve.number} and its runs are cancelled.")
    return redirect("data-curve", curve_id=curve.pk)
