"""Pages of a project's data: upload (files or a zip), the image gallery, the split report."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from datasets.imaging import ImageRefused
from datasets.ingest import IncomingImage, IngestResult, image_ingest, zip_ingest
from datasets.selectors import image_list
from datasets.splits import split_report
from projects.models import Project, Role
from projects.selectors import project_with_role


def _project_for(request: HttpRequest, project_id: int, required: Role) -> Project:
    return project_with_role(project_id=project_id, user=request.user, required=required)


@login_required
def split_report_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project_for(request, project_id, Role.REVIEWER)
    report = split_report(project=project)
    dimensions: dict[str, list] = {}
    for row in report.conditions:
        dimensions.setdefault(row.dimension, []).append(row)
    context = {"project": project, "report": report, "dimensions": dimensions, "splits": ["train", "val", "test"]}
    return render(request, "datasets/split_report.html", context)


@login_required
def image_gallery(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project_for(request, project_id, Role.REVIEWER)
    split = request.GET.get("split") or None
    page = Paginator(image_list(project=project, split=split if split in ("train", "val", "test") else None), 60)
    context = {"project": project, "page": page.get_page(request.GET.get("page")), "split": split}
    return render(request, "datasets/image_gallery.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def image_upload_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Upload files or a zip archive through the same service as the API."""
    project = _project_for(request, project_id, Role.ADMIN)
    results: list[IngestResult] = []
    error = None
    chosen = {dimension: request.POST.get(f"condition_{dimension}", "") for dimension in project.conditions}
    if request.method == "POST":
        conditions = {dimension: value for dimension, value in chosen.items() if value}
        archive = request.FILES.get("archive")
        files = request.FILES.getlist("files")
        if archive and files:
            error = "Choose image files or a zip archive, not both: nothing was uploaded."
        elif archive:
            try:
                results = zip_ingest(
                    project=project,
                    archive=archive,
                    archive_size=archive.size,
                    conditions=conditions,
                    user=request.user,
                )
            except ImageRefused as refusal:
                error = refusal.message
        elif files:
            uploads = [IncomingImage(name=f.name, file=f, size=f.size, conditions=conditions) for f in files]
            results = image_ingest(project=project, uploads=uploads, user=request.user)
        else:
            error = "Choose image files or a zip archive to upload."
    summary = {status: sum(r.status == status for r in results) for status in ("stored", "duplicate", "refused")}
    context = {
        "project": project,
        "results": results,
        "summary": summary,
        "error": error,
        "condition_fields": [
            (dimension, values, chosen[dimension]) for dimension, values in project.conditions.items()
        ],
    }
    status = 400 if error else 200
    if results and not summary["stored"] and not summary["duplicate"]:
        status = results[0].http_status  # every file refused: the first refusal's status, as the API answers
    return render(request, "datasets/image_upload.html", context, status=status)
