"""Quorum's URLs plus two that fail on purpose, for the error-page tests."""

from django.urls import path

from config.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


def boom(request):
    raise RuntimeError("a secret value: hunter2")


urlpatterns = [path("boom/", boom), path("api/v1/boom/", boom), *urlpatterns]
