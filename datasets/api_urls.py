from django.urls import path

from datasets import image_api

urlpatterns = [
    path("projects/<int:project_id>/images/", image_api.ProjectImagesApi.as_view(), name="api-project-images"),
    path(
        "projects/<int:project_id>/images/zip/", image_api.ProjectImagesZipApi.as_view(), name="api-project-images-zip"
    ),
    path("projects/<int:project_id>/split-report/", image_api.SplitReportApi.as_view(), name="api-split-report"),
    path("images/<int:image_id>/", image_api.ImageDetailApi.as_view(), name="api-image-detail"),
    path("images/<int:image_id>/file/", image_api.ImageFileApi.as_view(), name="api-image-file"),
    path(
        "images/<int:image_id>/thumbnail/",
        image_api.ImageFileApi.as_view(variant="thumbnail"),
        name="api-image-thumbnail",
    ),
]
