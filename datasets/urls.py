from django.urls import path

from datasets import data_views

urlpatterns = [
    path("projects/<int:project_id>/splits/", data_views.split_report_page, name="project-splits"),
    path("projects/<int:project_id>/images/", data_views.image_gallery, name="project-images"),
    path("projects/<int:project_id>/images/upload/", data_views.image_upload_page, name="project-image-upload"),
]
