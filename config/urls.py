"""Root URLs: pages, the versioned API, its schema and docs, admin and health."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config.api_docs import ApiDocsView
from ops.views import favicon, healthz, metrics
from projects.sign_in import sign_in_throttled

api_v1 = [
    path("", include("projects.api_urls")),
    path("", include("datasets.api_urls")),
    path("", include("annotation.api_urls")),
    path("", include("transfer.api_urls")),
    path("", include("groundtruth.api_urls")),
    path("", include("training.api_urls")),
    path("", include("serving.api_urls")),
]

urlpatterns = [
    path("", include("projects.urls")),
    path("", include("datasets.urls")),
    path("", include("annotation.urls")),
    path("", include("groundtruth.urls")),
    path("", include("training.urls")),
    path("", include("serving.urls")),
    path("login/", sign_in_throttled(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django admin's own sign-in, throttled like the one above.
    path("admin/login/", sign_in_throttled(admin.site.login), name="admin-sign-in"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Prometheus' scrape, behind a bearer token (off without one)
    path("metrics", metrics, name="metrics"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", favicon),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
