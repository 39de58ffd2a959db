from django.urls import path

from projects import api

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
]
