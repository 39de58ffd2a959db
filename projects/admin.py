from django import forms
from django.contrib import admin
from django.db.models import Count

from config.errors import DomainError
from projects.models import ApiToken, Membership, Project
from projects.services import SETTINGS, project_settings_check, project_update


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class ProjectAdminForm(forms.ModelForm):
    """A change is checked by the service the API and the settings page use."""

    class Meta:
        model = Project
        fields = SETTINGS

    def clean(self) -> dict:
        cleaned = super().clean()
        self.settings_changes = {name: cleaned[name] for name in self.changed_data if name in SETTINGS}
        if self.instance.pk is not None and self.settings_changes and not self.errors:
            try:
                project_settings_check(project=Project.objects.get(pk=self.instance.pk), changes=self.settings_changes)
            except DomainError as error:
                for name, messages in (error.fields or {None: [error.message]}).items():
                    for message in messages:
                        self.add_error(name if name in self.fields else None, message)
        return cleaned


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = ["name", "overlap_k", "split_percentages", "member_count", "created_by", "created_at"]
    search_fields = ["name", "description"]
    list_filter = ["overlap_k", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, project: Project) -> int:
        return project.member_total

    @admin.display(description="train / val / test")
    def split_percentages(self, project: Project) -> str:
        return f"{project.train_percent} / {project.val_percent} / {project.test_percent}"

    def save_model(self, request, obj, form, change):
        if change:
            # the project's settings change through the service (checked again, under a lock)
            project_update(project=obj, **form.settings_changes)
            return
        obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, *args, **kwargs):
        response = super().render_change_form(request, context, *args, **kwargs)
        if context["adminform"].form.errors:
            response.status_code = 400  # refused, as the API and the settings page answer
        return response


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """People's API tokens: staff see whose, since when and the first characters, never the
    key (only its hash is stored); they can revoke one by deleting it."""

    list_display = ["user", "prefix", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "prefix"]
    fields = ["user", "prefix", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]
