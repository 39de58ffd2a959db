"""A person creates, uses, rotates and revokes their API token, through the API and the account page."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_token_from_password_then_used_rotated_and_revoked(api_client, people):
    # given a script with only a username and password
    response = api_client.post(reverse("api-token"), {"username": "anna", "password": PASSWORD}, format="json")
    assert response.status_code == 201
    first = response.json()["token"]
    # when it calls the API with the token
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    me = api_client.get(reverse("api-me"))
    # then it acts as that person
    assert me.status_code == 200
    assert me.json()["username"] == "anna"
    assert me.json()["projects"] == [{"id": people.project.pk, "name": "Project A", "role": "annotator"}]
    # when it rotates the token, the old one stops working
    second = api_client.post(reverse("api-token")).json()["token"]
    assert second != first
    assert api_client.get(reverse("api-me")).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert api_client.get(reverse("api-me")).status_code == 200
    # when it revokes the token, nothing works with it any more
    assert api_client.delete(reverse("api-token")).status_code == 204
    assert not Token.objects.filter(user=people.annotator).exists()
    response = api_client.get(reverse("api-me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_wrong_password_gets_no_token(api_client, people):
    response = api_client.post(reverse("api-token"), {"username": "anna", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not Token.objects.exists()


def test_anonymous_without_credentials_gets_a_401(api_client, db):
    response = api_client.post(reverse("api-token"), {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Sign in, or send username and password."


def test_account_page_creates_shows_once_and_revokes(client, people):
    client.force_login(people.reviewer)
    # create: the key is shown on the next page view only
    page = client.post(reverse("account-token-create"), follow=True).content.decode()
    key = Token.objects.get(user=people.reviewer).key
    assert key in page
    again = client.get(reverse("account")).content.decode()
    assert key not in again
    assert f"…{key[-4:]}" in again
    # revoke
    page = client.post(reverse("account-token-revoke"), follow=True).content.decode()
    assert "Your API token was revoked." in page
    assert not Token.objects.filter(user=people.reviewer).exists()


def test_account_token_create_needs_post_and_csrf(people):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(people.reviewer)
    assert client.get(reverse("account-token-create")).status_code == 405
    assert client.post(reverse("account-token-create")).status_code == 403
    assert not Token.objects.exists()
