from django.urls import path

from projects import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/token/", views.account_token_create, name="account-token-create"),
    path("account/token/revoke/", views.account_token_revoke, name="account-token-revoke"),
    path("projects/new/", views.project_create_page, name="project-create"),
    path("projects/<int:project_id>/settings/", views.project_settings_page, name="project-settings"),
]
