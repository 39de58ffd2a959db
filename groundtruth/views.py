"""Pages of the groundtruth app: consensus versions and their agreement reports (reviewers)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config.errors import DomainError, ValidationFailed
from groundtruth import charts
from groundtruth.models import AgreementReport
from groundtruth.reports import height_labels
from groundtruth.selectors import (
    GOLD_FIGURES_MIN_IMAGES,
    chunk_progress,
    consensus_version_get,
    consensus_versions,
    image_state_counts,
    members_work,
    my_figures,
    suggestion_bias,
    suggestions_taken,
)
from groundtruth.services import consensus_version_create, gold_pause_clear, weighting_by_default
from projects.models import Role
from projects.selectors import project_role, project_with_role, role_at_least


@login_required
@require_http_methods(["GET", "POST"])
def consensus_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's consensus versions, and a form for a new one."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    form = {
        "iou_threshold": "0.5", "quorum": "", "fuse": "median",
        "reliability_weighted": weighting_by_default(project=project), "accept_f1": "0.8", "include_not_blind": False,
    }  # fmt: skip
    status = 200
    if request.method == "POST":
        form = {
            "iou_threshold": request.POST.get("iou_threshold", "0.5"),
            "quorum": request.POST.get("quorum", ""),
            "fuse": request.POST.get("fuse", "median"),
            "reliability_weighted": request.POST.get("reliability_weighted") == "on",
            "accept_f1": request.POST.get("accept_f1", "0.8"),
            "include_not_blind": request.POST.get("include_not_blind") == "on",
        }
        try:
            version = consensus_version_create(
                project=project,
                user=request.user,
                iou_threshold=_float(form["iou_threshold"], "iou_threshold"),
                quorum=_float(form["quorum"], "quorum") if form["quorum"].strip() else None,
                fuse=form["fuse"],
                reliability_weighted=form["reliability_weighted"],
                accept_f1=_float(form["accept_f1"], "accept_f1"),
                include_not_blind=form["include_not_blind"],
            )
        except DomainError as error:
            messages.error(request, error.message)
            status = error.status_code
        else:
            messages.success(request, f"Version {version.number} is being computed; this page shows when it is done.")
            return redirect("project-consensus", project_id=project.pk)
    versions = [
        (version, image_state_counts(version=version), chunk_progress(version=version))
        for version in consensus_versions(project=project)
    ]
    context = {"project": project, "versions": versions, "form": form}
    return render(request, "groundtruth/consensus.html", context, status=status)


@login_required
def report_page(request: HttpRequest, version_id: int) -> HttpResponse:
    """The agreement report of one version, charts drawn as inline SVG."""
    version = consensus_version_get(version_id=version_id, user=request.user)
    if not role_at_least(project_role(project=version.project, user=request.user), Role.REVIEWER):
        raise PermissionDenied
    report = AgreementReport.objects.filter(version=version).first()
    context = {"project": version.project, "version": version, "data": report.data if report else None}
    if report is not None:
        data = report.data
        context["heatmap"] = charts.heatmap(data["pairwise"]["annotators"], data["pairwise"]["f1"])
        context["histogram"] = charts.histogram(data["iou_histogram"]["edges"], data["iou_histogram"]["counts"])
        baseline = {row["id"]: row for row in data["baseline"]["annotators"]}
        # a bin nobody's images reached is absent from an annotator's row: a "-" in its column
        context["baseline_rows"] = [
            (row, [row["recall_by_height"].get(label) for label in height_labels()])
            for row in data["baseline"]["annotators"]
        ]
        context["people"] = [(row, baseline.get(row["id"])) for row in data["annotators"]]
        by_height = data["by_height"]
        context["heights"] = [(label, by_height[label]) for label in height_labels() if label in by_height]
        if version.project.allow_suggestions or suggestions_taken(project=version.project):
            context["suggestions"] = suggestion_bias(project=version.project)
    return render(request, "groundtruth/report.html", context)


def _float(value: str, field: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationFailed(f"{field} must be a number.", fields={field: ["A number."]}) from None


@login_required
def my_figures_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """An annotator's own figures: gold score, agreement with the others, habits, speed."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.ANNOTATOR)
    return render(
        request,
        "groundtruth/my_figures.html",
        {
            "project": project,
            "mine": my_figures(project=project, user=request.user),
            "gold_min_images": GOLD_FIGURES_MIN_IMAGES,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def annotators_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Every member's work and gold score, who gold tasks have paused, and a button that lets
    a paused annotator continue (reviewers)."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    status = 200
    if request.method == "POST":
        user_id = request.POST.get("user", "")
        if user_id.isdigit():
            if int(user_id) > 2**63 - 1:  # no row has it; SQLite cannot even compare it
                raise Http404("No such member.")
            membership = gold_pause_clear(project=project, user_id=int(user_id))  # 404 for a non-member
            messages.success(
                request, f"{membership.user.username} may take tasks again; earlier gold tasks no longer count."
            )
            return redirect("project-annotators", project_id=project.pk)
        messages.error(request, "Choose a member to let continue.")
        status = 400
    return render(
        request,
        "groundtruth/annotators.html",
        {"project": project, "members": members_work(project=project)},
        status=status,
    )


@login_required
def review_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Settle the current version's images that need review, least agreed first."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.REVIEWER)
    return render(request, "groundtruth/review.html", {"project": project})
