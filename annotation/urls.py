from django.urls import path

from annotation import data_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", views.account, name="account"),
    path("account/token/", views.account_token_create, name="account-token-create"),
    path("account/token/revoke/", views.account_token_revoke, name="account-token-revoke"),
    path("projects/new/", data_views.project_create_page, name="project-create"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/splits/", data_views.split_report_page, name="project-splits"),
    path("projects/<int:project_id>/images/", data_views.image_gallery, name="project-images"),
    path("projects/<int:project_id>/images/upload/", data_views.image_upload_page, name="project-image-upload"),
]
