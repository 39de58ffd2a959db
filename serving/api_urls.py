from django.urls import path

from serving import api

urlpatterns = [
    path("predict/", api.PredictApi.as_view(), name="api-predict"),
    path("predict/batch/", api.PredictBatchApi.as_view(), name="api-predict-batch"),
    path("predict/batch/<int:job_id>/", api.PredictionJobApi.as_view(), name="api-predict-job"),
    path("serving/metrics/", api.ServingMetricsApi.as_view(), name="api-serving-metrics"),
    path("serving/drift/", api.DriftApi.as_view(), name="api-serving-drift"),
    path("projects/<int:project_id>/preannotate/", api.PreannotateApi.as_view(), name="api-preannotate"),
    path("projects/<int:project_id>/uncertain-images/", api.UncertainImagesApi.as_view(), name="api-uncertain-images"),
]
