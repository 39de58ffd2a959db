"""Pages of serving: try a model on an image, and watch the prediction API."""

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control

from annotation.models import Role
from annotation.selectors import project_with_role
from serving.selectors import drift_alerts_current
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
    """Requests, latency and errors of the project's models, refreshed live; drift alerts."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    return render(
        request, "serving/monitoring.html", {"project": project, "alerts": drift_alerts_current(project=project)}
    )
