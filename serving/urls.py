from django.urls import path

from serving import views

urlpatterns = [
    path("projects/<int:project_id>/try/", views.try_page, name="serving-try"),
    path("projects/<int:project_id>/monitoring/", views.monitoring_page, name="serving-monitoring"),
    path("serving/samples/<str:name>", views.sample_image, name="serving-sample"),
    path("projects/<int:project_id>/serving/", views.project_serving_page, name="project-serving"),
    path(
        "projects/<int:project_id>/monitoring/send-uncertain/", views.uncertain_send_page, name="serving-send-uncertain"
    ),
]
