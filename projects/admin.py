from django.contrib import admin
from django.db.models import Count

from projects.models import ApiToken, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap_k", "split_percentages", "member_count", "created_by", "created_at"]
    search_fields = ["name", "description"]
    list_filter = ["overlap_k", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [MembershipInline]
    # The split settings decide each image's split as it arrives; once images are in, a change
    # would split later arrivals differently and could move the test set's share.
    SPLIT_FIELDS = ["train_percent", "val_percent", "test_percent", "split_seed"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.images.exists():
            return [*self.readonly_fields, *self.SPLIT_FIELDS]
        return self.readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, project: Project) -> int:
        return project.member_total

    @admin.display(description="train / val / test")
    def split_percentages(self, project: Project) -> str:
        return f"{project.train_percent} / {project.val_percent} / {project.test_percent}"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


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
