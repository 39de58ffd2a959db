from django.urls import path

from training import views

urlpatterns = [
    path("projects/<int:project_id>/training/", views.training_page, name="project-training"),
    path("projects/<int:project_id>/training/policy/", views.policy_page, name="project-training-policy"),
    path("training-runs/<int:run_id>/", views.run_page, name="training-run"),
    path("training-runs/<int:run_id>/cancel/", views.run_cancel_page, name="training-run-cancel"),
    path("models/<int:model_id>/", views.model_page, name="model"),
    path("models/<int:model_id>/promote/", views.model_promote_page, name="model-promote"),
    path("base-weights/", views.base_weights_page, name="base-weights"),
    path("models/<int:model_id>/test-look/", views.model_test_look_page, name="model-test-look"),
    path(
        "projects/<int:project_id>/deployment-targets/",
        views.deployment_targets_page,
        name="project-deployment-targets",
    ),
    path("models/<int:model_id>/targets/measure/", views.model_targets_measure_page, name="model-targets-measure"),
    path("projects/<int:project_id>/data-curves/", views.data_curves_page, name="project-data-curves"),
    path("data-curves/<int:curve_id>/", views.data_curve_page, name="data-curve"),
    path("data-curves/<int:curve_id>/cancel/", views.data_curve_cancel_page, name="data-curve-cancel"),
]
