from django.urls import path

from annotation import assignment_api

urlpatterns = [
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
]
