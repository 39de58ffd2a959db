"""Pages of serving: try a model on an image, and watch the prediction API."""

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError
from projects.models import Role
from projects.selectors import project_with_role
from serving.forms import ApiClientForm, RoutingRuleForm
from serving.models import RoutingRule
from serving.services import (
    api_client_active_set,
    api_client_create,
    api_client_token_rotate,
    project_client_get,
    project_clients,
    routing_rule_active_set,
    routing_rule_delete,
    routing_rule_save,
    uncertain_images_send,
)
from training.selectors import champion_get, model_versions

SAMPLES = ("bus.jpg", "zidane.jpg")  # the two photographs that ship inside ultralytics


@login_required
def try_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Upload an image, or pick one of ultralytics' two photographs, and see a model's boxes."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    context = {
        "project": project,
        "models": model_versions(project=project),
        "champion": champion_get(project=project),
        "samples": SAMPLES,
    }
    return render(request, "serving/try.html", context)


@login_required
@cache_control(max_age=86400)
def sample_image(request: HttpRequest, name: str) -> FileResponse:
    """One of the photographs that ship with ultralytics, for the try-it page."""
    if name not in SAMPLES:
        raise Http404("No such sample.")
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / name
    return FileResponse(path.open("rb"), content_type="image/jpeg")


@login_required
def monitoring_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Requests, latency and errors of the project's models, refreshed live (drift alerts
    are the banner every project page shows its reviewers)."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    return render(request, "serving/monitoring.html", {"project": project})


@login_required
@require_POST
def uncertain_send_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """The monitoring page's button: send the N most uncertain served images to the annotators."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    try:
        count = int(request.POST.get("count", "20"))
        sent = uncertain_images_send(project=project, user=request.user, count=count, by=request.POST.get("by", ""))
    except (ValueError, DomainError) as error:
        messages.error(request, getattr(error, "message", "count must be a whole number."))
    else:
        messages.success(
            request,
            f"{sent['sent']} served images sent to the annotators: {sent['added']} new images, "
            f"{sent['moved_up']} moved to the front of the queue.",
        )
    return redirect("serving-monitoring", project_id=project.pk)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def project_serving_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Project admins: the project's API clients (make one, replace its token, stop or start
    it) and its routing rules (add, edit, switch off, delete). A client that other projects
    use too is shown, but left to staff."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.ADMIN)
    rule_id = request.GET.get("rule") or request.POST.get("rule")
    editing = get_object_or_404(RoutingRule, project=project, pk=rule_id) if (rule_id or "").isdigit() else None
    client_form = ApiClientForm(prefix="client")
    rule_form = RoutingRuleForm(instance=editing, project=project, prefix="rule")
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        done = _serving_action(request, project, action, editing)
        if done is True:
            return redirect("project-serving", project_id=project.pk)
        if isinstance(done, ApiClientForm):
            client_form = done
        elif isinstance(done, RoutingRuleForm):
            rule_form = done
        else:
            messages.error(request, f"Unknown action {action!r}.")
        status = 400
    context = {
        "project": project,
        "clients": project_clients(project=project),
        "rules": RoutingRule.objects.filter(project=project).select_related(
            "client", "model", "canary", "shadow", "target"
        ),
        "client_form": client_form,
        "rule_form": rule_form,
        "editing": editing,
        "new_token": request.session.pop("new_client_token", None),
    }
    return render(request, "serving/project_serving.html", context, status=status)


def _serving_action(request: HttpRequest, project, action: str, editing: RoutingRule | None):
    """Carry out one POST of the serving page: True when done, the bound form when its input
    was invalid, None for an unknown action. Another project's client or rule is a 404."""
    if action == "client-create":
        form = ApiClientForm(request.POST, prefix="client")
        if not form.is_valid():
            return form
        client, token = api_client_create(
            name=form.cleaned_data["name"], projects=[project], user=request.user,
            rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
        )  # fmt: skip
        request.session["new_client_token"] = {"client": client.name, "token": token}
        return True
    if action in ("client-rotate", "client-toggle"):
        client = project_client_get(project=project, client_id=_id(request.POST.get("client")))
        if action == "client-rotate":
            token = api_client_token_rotate(client=client)
            request.session["new_client_token"] = {"client": client.name, "token": token}
        else:
            api_client_active_set(client=client, is_active=not client.is_active)
            messages.success(request, f"{client.name} is {'active' if client.is_active else 'stopped'}.")
        return True
    if action == "rule-save":
        form = RoutingRuleForm(request.POST, instance=editing, project=project, prefix="rule")
        if not form.is_valid():
            return form
        rule = routing_rule_save(rule=form.save(commit=False))
        messages.success(request, f"Rule {rule.name} saved.")
        return True
    if action in ("rule-toggle", "rule-delete"):
        if editing is None:
            raise Http404("No such routing rule of this project.")
        if action == "rule-delete":
            routing_rule_delete(rule=editing)
            messages.success(request, f"Rule {editing.name} deleted.")
        else:
            routing_rule_active_set(rule=editing, is_active=not editing.is_active)
            messages.success(request, f"Rule {editing.name} is {'on' if editing.is_active else 'off'}.")
        return True
    return None


def _id(value: str | None) -> int:
    if not (value or "").isdigit():
        raise Http404("No such API client of this project.")
    return int(value)
