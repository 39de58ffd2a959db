from django.urls import path

from transfer import transfer_api

urlpatterns = [
    path("projects/<int:project_id>/import/", transfer_api.ProjectImportApi.as_view(), name="api-project-import"),
    path("projects/<int:project_id>/export/", transfer_api.ProjectExportApi.as_view(), name="api-project-export"),
]
