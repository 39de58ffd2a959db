"""A test that needs a missing service skips with the reason, and fails under REQUIRE_SERVICES=1."""

import pytest

from tests import conftest


class FakeItem:
    def __init__(self, marker: str):
        self.marker = marker

    def get_closest_marker(self, name: str):
        return pytest.mark.redis.mark if name == self.marker else None


def test_missing_service_skips_with_the_reason(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Redis at 127.0.0.1:1 is unreachable"):
        conftest.pytest_runtest_setup(FakeItem("redis"))


def test_missing_service_fails_when_services_are_required(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"REQUIRE_SERVICES=1 and Redis at 127.0.0.1:1"):
        conftest.pytest_runtest_setup(FakeItem("redis"))


def test_unmarked_tests_need_nothing(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    conftest.pytest_runtest_setup(FakeItem("none"))
