"""Pages: a new project (staff), a project's settings (its admins) and the account page with its API token."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError
from projects.forms import ProjectForm, ProjectSettingsForm
from projects.models import ApiToken, Role
from projects.selectors import project_with_role
from projects.services import api_token_revoke, api_token_rotate, project_create, project_update


@never_cache
@login_required
@require_http_methods(["GET"])
def account(request: HttpRequest) -> HttpResponse:
    """The caller's account: their API token (a new one shown once, never cached)."""
    token = ApiToken.objects.filter(user=request.user).first()
    return render(request, "projects/account.html", {"token": token, "new_key": request.session.pop("new_token", None)})


@login_required
@require_POST
def account_token_create(request: HttpRequest) -> HttpResponse:
    token = api_token_rotate(user=request.user)
    # Shown once, on the next page view, then forgotten by the session.
    request.session["new_token"] = token.key
    messages.success(request, "A new API token was created; any earlier token no longer works.")
    return redirect("account")


@login_required
@require_POST
def account_token_revoke(request: HttpRequest) -> HttpResponse:
    if api_token_revoke(user=request.user):
        messages.success(request, "Your API token was revoked.")
    else:
        messages.info(request, "You had no API token.")
    return redirect("account")


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
    return render(request, "projects/project_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project's settings, for its admins (staff or not); refused changes answer 400 with
    the reason under each setting, and nothing is changed."""
    project = project_with_role(project_id=project_id, user=request.user, required=Role.ADMIN)
    initial = ProjectSettingsForm.initial_for(project)
    form = ProjectSettingsForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            project_update(project=project, **form.changes())
        except DomainError as error:
            for name, messages_ in (error.fields or {None: [error.message]}).items():
                for message in messages_:
                    form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, f"Settings of {project.name!r} saved.")
            return redirect("project-detail", project_id=project.pk)
    has_images = project.images.exists()
    context = {"form": form, "project": project, "has_images": has_images}
    return render(request, "projects/project_settings.html", context, status=400 if form.errors else 200)
