"""DRF permission classes expressing the role table of DESIGN.md.

Views first load the project through `projects.selectors.project_get`, which answers 404
to anyone who may not see it; these classes then decide 403 for a member whose role is
too low. Staff users are admins of every project.
"""

from rest_framework.permissions import BasePermission

from projects.models import Project, Role
from projects.selectors import project_get, project_role, role_at_least


class HasProjectRole(BasePermission):
    required_role: Role = Role.ANNOTATOR
    message = "Your role in this project does not allow this."

    def has_object_permission(self, request, view, obj) -> bool:
        project = obj if isinstance(obj, Project) else obj.project
        return role_at_least(project_role(project=project, user=request.user), self.required_role)


class IsProjectAnnotator(HasProjectRole):
    required_role = Role.ANNOTATOR
    message = "Only members of this project may do this."


class IsProjectReviewer(HasProjectRole):
    required_role = Role.REVIEWER
    message = "Only reviewers and admins of this project may do this."


class IsProjectAdmin(HasProjectRole):
    required_role = Role.ADMIN
    message = "Only admins of this project may do this."


class IsStaff(BasePermission):
    message = "Only Quorum administrators may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class ProjectApiMixin:
    """For API views under /projects/{project_id}/: the project, 404 to whoever may not see
    it, then the view's permission classes (403 for a role too low)."""

    def project_for(self, request, project_id: int) -> Project:
        project = project_get(project_id=project_id, user=request.user)
        self.check_object_permissions(request, project)
        return project
