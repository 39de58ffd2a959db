from django.urls import path

from annotation import api, assignment_api, image_api, transfer_api

urlpatterns = [
    path("me/", api.MeApi.as_view(), name="api-me"),
    path("auth/token/", api.ApiTokenApi.as_view(), name="api-token"),
    path("projects/", api.ProjectListApi.as_view(), name="api-project-list"),
    path("projects/<int:project_id>/", api.ProjectDetailApi.as_view(), name="api-project-detail"),
    path("projects/<int:project_id>/members/", api.MembershipListApi.as_view(), name="api-membership-list"),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        api.MembershipDetailApi.as_view(),
        name="api-membership-detail",
    ),
    path("projects/<int:project_id>/images/", image_api.ProjectImagesApi.as_view(), name="api-project-images"),
    path(
        "projects/<int:project_id>/images/zip/", image_api.ProjectImagesZipApi.as_view(), name="api-project-images-zip"
    ),
    path("projects/<int:project_id>/split-report/", image_api.SplitReportApi.as_view(), name="api-split-report"),
    path("projects/<int:project_id>/import/", transfer_api.ProjectImportApi.as_view(), name="api-project-import"),
    path("projects/<int:project_id>/export/", transfer_api.ProjectExportApi.as_view(), name="api-project-export"),
    path("projects/<int:project_id>/next-task/", assignment_api.NextTaskApi.as_view(), name="api-next-task"),
    path("assignments/<int:assignment_id>/", assignment_api.AssignmentDetailApi.as_view(), name="api-assignment"),
    path(
        "assignments/<int:assignment_id>/draft/",
        assignment_api.AssignmentDraftApi.as_view(),
        name="api-assignment-draft",
    ),
    path(
        "assignments/<int:assignment_id>/submit/",
        assignment_api.AssignmentSubmitApi.as_view(),
        name="api-assignment-submit",
    ),
    path(
        "assignments/<int:assignment_id>/skip/", assignment_api.AssignmentSkipApi.as_view(), name="api-assignment-skip"
    ),
    path(
        "assignments/<int:assignment_id>/image/",
        assignment_api.AssignmentImageApi.as_view(),
        name="api-assignment-image",
    ),
    path("images/<int:image_id>/", image_api.ImageDetailApi.as_view(), name="api-image-detail"),
    path("images/<int:image_id>/file/", image_api.ImageFileApi.as_view(), name="api-image-file"),
    path(
        "images/<int:image_id>/thumbnail/",
        image_api.ImageFileApi.as_view(variant="thumbnail"),
        name="api-image-thumbnail",
    ),
]
