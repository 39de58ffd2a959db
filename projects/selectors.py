"""Reads of projects and memberships, always scoped to the requesting user."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from projects.models import ROLE_RANK, Membership, Project, Role


@dataclass(frozen=True)
class ProjectWithRole:
    project: Project
    role: Role


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """Projects `user` may see: every project for staff, their memberships' otherwise."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_get(*, project_id: int, user: AbstractBaseUser) -> Project:
    """The project with `project_id` if `user` may see it; Http404 otherwise, whether or not it exists."""
    return get_object_or_404(project_list(user=user), pk=project_id)


def project_role(*, project: Project, user: AbstractBaseUser) -> Role | None:
    """The role of `user` in `project`: admin for staff, their membership's role, or None."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return Role.ADMIN
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    return Role(role) if role else None


def role_at_least(role: Role | None, required: Role) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[required]


def project_with_role(*, project_id: int, user: AbstractBaseUser, required: Role) -> Project:
    """For pages: the project (404 to whoever may not see it), PermissionDenied (403) when
    the user's role in it is below `required`."""
    project = project_get(project_id=project_id, user=user)
    if not role_at_least(project_role(project=project, user=user), required):
        raise PermissionDenied
    return project


def projects_with_roles(*, user: AbstractBaseUser) -> list[ProjectWithRole]:
    """Every project `user` may see with their role in it, for the home page."""
    if not user.is_authenticated:
        return []
    if user.is_staff:
        return [ProjectWithRole(project=p, role=Role.ADMIN) for p in Project.objects.all()]
    memberships = Membership.objects.filter(user=user).select_related("project").order_by("project__name")
    return [ProjectWithRole(project=m.project, role=Role(m.role)) for m in memberships]


def membership_list(*, project: Project) -> QuerySet[Membership]:
    """Members of `project`; the caller has already checked the requester may read them."""
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def membership_get(*, project: Project, user_id: int) -> Membership:
    return get_object_or_404(Membership, project=project, user_id=user_id)
