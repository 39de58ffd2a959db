from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
]
