from django.urls import path

from groundtruth import views

urlpatterns = [
    path("projects/<int:project_id>/consensus/", views.consensus_page, name="project-consensus"),
    path("consensus/<int:version_id>/report/", views.report_page, name="consensus-report"),
    path("projects/<int:project_id>/me/", views.my_figures_page, name="project-my-figures"),
    path("projects/<int:project_id>/review/", views.review_page, name="project-review"),
    path("projects/<int:project_id>/annotators/", views.annotators_page, name="project-annotators"),
]
