from django.urls import path

from serving import api

urlpatterns = [
    path("predict/", api.PredictApi.as_view(), name="api-predict"),
]
