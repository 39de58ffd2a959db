"""Template tags of serving: the drift banner shown on a project's pages to its reviewers."""

from django import template

from projects.models import Role
from projects.selectors import project_role, role_at_least
from serving.selectors import drift_alerts_current

register = template.Library()


@register.inclusion_tag("serving/_drift_banner.html")
def drift_banner(project, user) -> dict:
    """The current drift alerts of `project`'s models, for reviewers and admins; none for others."""
    if project is None or not getattr(project, "pk", None) or not user.is_authenticated:
        return {"alerts": []}
    if not role_at_least(project_role(project=project, user=user), Role.REVIEWER):
        return {"alerts": []}
    return {"alerts": drift_alerts_current(project=project), "project": project}
