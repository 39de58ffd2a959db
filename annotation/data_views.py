"""Pages of a project's data: upload (files or a zip), the image gallery, the split report."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation.forms import ProjectForm
from annotation.imaging import ImageRefused
from annotation.ingest import IncomingImage, IngestResult, image_ingest, zip_ingest
from annotation.models import Project, Role
from annotation.selectors import image_list, project_with_role
from annotation.services import project_create
from annotation.splits import split_report
from config.errors import DomainError


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
    return render(request, "annotation/split_report.html", context)


@login_required
def image_gallery(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project_for(request, project_id, Role.REVIEWER)
    split = request.GET.get("split") or None
    page = Paginator(image_list(project=project, split=split if split in ("train", "val", "test") else None), 60)
    context = {"project": project, "page": page.get_page(request.GET.get("page")), "split": split}
    return render(request, "annotation/image_gallery.html", context)


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
    return render(request, "annotation/image_upload.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_create_page(request: HttpRequest) -> HttpResponse:
    """A new project, for Quorum administrators (staff)."""
    if not request.user.is_staff:
        raise PermissionDenied
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(created_by=request.user, **form.cleaned_data)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Project {project.name!r} created. Upload its images next.")
            return redirect("project-detail", project_id=project.pk)
    return render(request, "annotation/project_form.html", {"form": form}, status=400 if form.errors else 200)
