from django.contrib import admin

from demo.models import SyntheticTruth


@admin.register(SyntheticTruth)
class SyntheticTruthAdmin(admin.ModelAdmin):
    list_display = ["image", "generator", "seed", "pedestrian_count"]
    list_filter = ["generator", "image__project"]
    list_select_related = ["image"]
    readonly_fields = ["image", "generator", "seed", "boxes", "visible", "ignore"]

    def has_add_permission(self, request) -> bool:
        return False
