"""Pages: the role-aware home page, a project's page and the account page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.assignments import assignment_is_blind
from annotation.selectors import annotator_stats
from config.errors import Conflict
from datasets.selectors import image_split_counts
from groundtruth.selectors import current_version_summary
from projects.models import Role
from projects.selectors import membership_list, project_get, project_role, projects_with_roles, role_at_least


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each person's work, grouped by what they do: annotate, review, administer."""
    items = projects_with_roles(user=request.user)
    annotating = [item.project for item in items if item.role == Role.ANNOTATOR]
    context = {
        "annotate": [(project, annotator_stats(project=project, user=request.user)) for project in annotating],
        "review": [item.project for item in items if item.role == Role.REVIEWER],
        "administer": [item.project for item in items if item.role == Role.ADMIN],
        "is_staff": request.user.is_staff,
    }
    return render(request, "annotation/home.html", context)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get(project_id=project_id, user=request.user)
    role = project_role(project=project, user=request.user)
    is_reviewer = role_at_least(role, Role.REVIEWER)
    context = {
        "project": project,
        "role": role,
        "is_reviewer": is_reviewer,
        "is_admin": role_at_least(role, Role.ADMIN),
        # Annotators work blind: they do not see who else is on the panel, nor the splits.
        "members": membership_list(project=project) if is_reviewer else None,
        "split_counts": image_split_counts(project=project) if is_reviewer else None,
        "ground_truth": current_version_summary(project=project) if is_reviewer else None,
    }
    return render(request, "annotation/project_detail.html", context)


@login_required
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotation canvas; the page asks the API for tasks one after another. A member who
    sees everyone's boxes, in a project that keeps its panel blind, is told why instead."""
    project = project_get(project_id=project_id, user=request.user)
    try:
        assignment_is_blind(project=project, user=request.user)
    except Conflict as refusal:
        return render(request, "annotation/annotate_refused.html", {"project": project, "message": refusal.message})
    return render(request, "annotation/annotate.html", {"project": project})
