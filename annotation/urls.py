from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", views.account, name="account"),
    path("account/token/", views.account_token_create, name="account-token-create"),
    path("account/token/revoke/", views.account_token_revoke, name="account-token-revoke"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
]
