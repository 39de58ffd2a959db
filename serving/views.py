"""Pages of serving: try a model on an image, and watch the prediction API."""

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from annotation.models import Role
from annotation.selectors import project_with_role
from config.errors import DomainError
from serving.services import uncertain_images_send
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
