"""A person creates, uses, rotates and revokes their API token, through the API and the
account page; the token is kept hashed, shown once, never cached, and ends with a new password."""

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from projects.models import ApiToken
from projects.services import api_token_rotate
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
    assert not ApiToken.objects.filter(user=people.annotator).exists()
    response = api_client.get(reverse("api-me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_wrong_password_gets_no_token(api_client, people):
    response = api_client.post(reverse("api-token"), {"username": "anna", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not ApiToken.objects.exists()


def test_anonymous_without_credentials_gets_a_401(api_client, db):
    response = api_client.post(reverse("api-token"), {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Sign in, or send username and password."


def test_account_page_creates_shows_once_and_revokes(client, people):
    client.force_login(people.reviewer)
    # create: the key is shown on the next page view only
    response = client.post(reverse("account-token-create"), follow=True)
    page = response.content.decode()
    key = page.split('id="new-token">')[1].split("<")[0]
    assert ApiToken.objects.get(user=people.reviewer).key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert "no-store" in response["Cache-Control"]
    again = client.get(reverse("account")).content.decode()
    assert key not in again
    assert f"{key[:8]}…" in again
    # revoke
    page = client.post(reverse("account-token-revoke"), follow=True).content.decode()
    assert "Your API token was revoked." in page
    assert not ApiToken.objects.filter(user=people.reviewer).exists()


def test_account_token_create_needs_post_and_csrf(people):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(people.reviewer)
    assert client.get(reverse("account-token-create")).status_code == 405
    assert client.post(reverse("account-token-create")).status_code == 403
    assert not ApiToken.objects.exists()


def test_only_a_hash_and_a_prefix_are_kept_and_staff_see_the_prefix_only(client, people):
    # given a token made for the annotator
    key = api_token_rotate(user=people.annotator).key
    # then the database holds its sha256 and first 8 characters, never the key
    token = ApiToken.objects.get(user=people.annotator)
    assert token.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:8]
    assert key not in {
        value for field in ApiToken._meta.fields if isinstance(value := getattr(token, field.attname), str)
    }
    # and Django admin shows staff the prefix, not the key
    people.staff.is_superuser = True
    people.staff.save()
    client.force_login(people.staff)
    listing = client.get(reverse("admin:projects_apitoken_changelist")).content.decode()
    detail = client.get(reverse("admin:projects_apitoken_change", args=[token.pk])).content.decode()
    assert key[:8] in listing
    assert key not in listing and key not in detail
    assert client.get(reverse("admin:projects_apitoken_add")).status_code == 403


def test_a_new_password_ends_every_token_made_before_it(api_client, people):
    key = api_token_rotate(user=people.annotator).key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get(reverse("api-me")).status_code == 200
    # when the password changes (any way: the account, admin, changepassword)
    user = get_user_model().objects.get(pk=people.annotator.pk)
    user.set_password("a-new-and-different-passphrase")
    user.save()
    # then the token is refused, saying why, and is gone
    response = api_client.get(reverse("api-me"))
    assert response.status_code == 401
    assert "password changed" in response.json()["error"]["message"]
    assert not ApiToken.objects.filter(user=people.annotator).exists()
    # and a token made after the change works
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_rotate(user=user).key}")
    assert api_client.get(reverse("api-me")).status_code == 200


@pytest.mark.parametrize("how", ["password", "session", "token"])
def test_an_answer_that_shows_a_token_is_never_stored(api_client, people, how):
    if how == "session":
        api_client.force_login(people.annotator)
        body = {}
    elif how == "token":
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_rotate(user=people.annotator).key}")
        body = {}
    else:
        body = {"username": "anna", "password": PASSWORD}
    response = api_client.post(reverse("api-token"), body, format="json")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


def test_a_token_of_a_deactivated_person_is_refused(api_client, people):
    key = api_token_rotate(user=people.annotator).key
    get_user_model().objects.filter(pk=people.annotator.pk).update(is_active=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get(reverse("api-me")).status_code == 401
