from django.urls import path

from training import api

urlpatterns = [
    path("projects/<int:project_id>/training-runs/", api.ProjectTrainingRunsApi.as_view(), name="api-training-runs"),
    path("training-runs/<int:run_id>/", api.TrainingRunApi.as_view(), name="api-training-run"),
    path("training-runs/<int:run_id>/cancel/", api.TrainingRunCancelApi.as_view(), name="api-training-run-cancel"),
    path("base-weights/", api.BaseWeightsListApi.as_view(), name="api-base-weights"),
    path("base-weights/<int:base_id>/", api.BaseWeightsApi.as_view(), name="api-base-weight"),
    path("training/architectures/", api.ArchitecturesApi.as_view(), name="api-architectures"),
    path("projects/<int:project_id>/models/", api.ProjectModelsApi.as_view(), name="api-project-models"),
    path("models/<int:model_id>/", api.ModelVersionApi.as_view(), name="api-model"),
    path("models/<int:model_id>/promote/", api.ModelPromoteApi.as_view(), name="api-model-promote"),
    path("models/<int:model_id>/test-evaluation/", api.ModelTestLookApi.as_view(), name="api-model-test-look"),
    path("projects/<int:project_id>/training-policy/", api.TrainingPolicyApi.as_view(), name="api-training-policy"),
    path(
        "projects/<int:project_id>/deployment-targets/",
        api.ProjectDeploymentTargetsApi.as_view(),
        name="api-deployment-targets",
    ),
    path("deployment-targets/<int:target_id>/", api.DeploymentTargetApi.as_view(), name="api-deployment-target"),
    path("models/<int:model_id>/targets/", api.ModelTargetsApi.as_view(), name="api-model-targets"),
    path("target-builds/<int:build_id>/manifest/", api.TargetBuildManifestApi.as_view(), name="api-target-manifest"),
    path("target-builds/<int:build_id>/artifact/", api.TargetBuildArtifactApi.as_view(), name="api-target-artifact"),
    path("projects/<int:project_id>/data-curves/", api.ProjectDataCurvesApi.as_view(), name="api-data-curves"),
    path("data-curves/<int:curve_id>/", api.DataCurveApi.as_view(), name="api-data-curve"),
    path("data-curves/<int:curve_id>/download/", api.DataCurveDownloadApi.as_view(), name="api-data-curve-download"),
    path("data-curves/<int:curve_id>/cancel/", api.DataCurveCancelApi.as_view(), name="api-data-curve-cancel"),
]
