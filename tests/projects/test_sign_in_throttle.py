"""Sign-in is throttled per username and per address, on the sign-in page, Django admin's
sign-in and the token endpoint: 429 with a Retry-After that holds, failures only counted,
and no lasting lock-out of the real user."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from projects import sign_in
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, set by the test (seconds); starts 10 s into a minute."""
    cache.clear()
    now = [1_800_000_010.0]
    monkeypatch.setattr(sign_in, "_clock", lambda: now[0])
    return now


def page_sign_in(client, username: str, password: str, url: str = "/login/"):
    return client.post(url, {"username": username, "password": password})


def test_the_eleventh_wrong_password_for_a_name_is_refused_until_the_window_passes(client, people, clock):
    # given ten wrong passwords for anna, a minute apart from this address and others
    for attempt in range(10):
        response = page_sign_in(client, "anna", f"wrong-{attempt}")
        assert response.status_code == 200  # the form again, with its error
    # when an eleventh comes, even with the right password
    refused = page_sign_in(client, "anna", PASSWORD)
    # then it is refused on Quorum's own page, with a Retry-After
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 0 < wait <= sign_in.WINDOW_MINUTES * 60
    assert "Too many sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # and the Retry-After holds: a second before it, still refused; at it, the real user signs in
    clock[0] += wait - 1
    assert page_sign_in(client, "anna", PASSWORD).status_code == 429
    clock[0] += 1
    response = page_sign_in(client, "anna", PASSWORD)
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(people.annotator.pk)


def test_failures_age_out_one_minute_at_a_time(client, people, clock):
    # five failures in one minute, five in the next: the limit of ten is reached
    for minute in range(2):
        for attempt in range(5):
            page_sign_in(client, "anna", f"wrong-{minute}-{attempt}")
        clock[0] += 60
    clock[0] += (sign_in.WINDOW_MINUTES - 3) * 60
    response = page_sign_in(client, "anna", "wrong-again")
    assert response.status_code == 429
    # the first minute's five leave the window at the next minute: Retry-After says exactly that
    assert int(response["Retry-After"]) == 50
    clock[0] += 50
    assert page_sign_in(client, "anna", "still-wrong").status_code == 200


def test_successful_sign_ins_do_not_count(client, people, clock):
    for _ in range(25):
        assert page_sign_in(client, "anna", PASSWORD).status_code == 302
        client.logout()
    for attempt in range(10):
        assert page_sign_in(client, "anna", f"wrong-{attempt}").status_code == 200
    assert page_sign_in(client, "anna", "wrong").status_code == 429


def test_thirty_failures_from_one_address_stop_guesses_at_any_name(client, db, clock):
    for index in range(30):
        assert page_sign_in(client, f"guess{index}", "x").status_code == 200
    response = page_sign_in(client, "someone-new", "x")
    assert response.status_code == 429
    # the same names from another address are not held back by this one's count
    other = client.post("/login/", {"username": "someone-new", "password": "x"}, REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 200


def test_the_token_endpoint_is_throttled_with_the_error_shape(api_client, people, clock):
    url = reverse("api-token")
    for attempt in range(10):
        response = api_client.post(url, {"username": "anna", "password": f"no{attempt}"}, format="json")
        assert response.status_code == 401
    response = api_client.post(url, {"username": "anna", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= sign_in.WINDOW_MINUTES * 60
    assert response.json()["error"]["code"] == "throttled"
    assert "Too many sign-in attempts" in response.json()["error"]["message"]
    clock[0] += sign_in.WINDOW_MINUTES * 60
    assert api_client.post(url, {"username": "anna", "password": PASSWORD}, format="json").status_code == 201


def test_django_admins_sign_in_is_throttled_too(client, db, clock):
    UserFactory(username="root-ish", is_staff=True)
    url = reverse("admin:login")
    for attempt in range(10):
        assert page_sign_in(client, "root-ish", f"wrong-{attempt}", url=url).status_code == 200
    assert page_sign_in(client, "root-ish", PASSWORD, url=url).status_code == 429


def test_places_are_taken_before_the_password_is_checked(db, clock):
    # parallel guesses cannot all pass the count together: each takes its place first
    outcomes = [sign_in.sign_in_take(username="anna", address="10.0.0.1") for _ in range(15)]
    assert outcomes[:10] == [None] * 10
    assert all(isinstance(wait, int) and wait > 0 for wait in outcomes[10:])
