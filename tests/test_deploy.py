"""docker-compose.yml and the Dockerfile agree with the settings and with each other.

Docker cannot run on the development machines; these checks keep the files honest.
"""

import re
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_shape():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "training-worker", "beat", "flower"}
    assert "gunicorn config.wsgi" in services["web"]["command"]
    assert "media:/app/var/media" in services["web"]["volumes"]
    assert services["worker"]["volumes"] == services["web"]["volumes"]


def test_every_app_service_gets_the_variables_settings_need():
    services = compose()["services"]
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read_by_settings = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings_source))
    for name in ("web", "worker", "training-worker", "beat"):
        environment = services[name]["environment"]
        for variable in ("DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"):
            assert variable in environment, (name, variable)
        # no variable that settings would silently ignore
        assert set(environment) <= read_by_settings, set(environment) - read_by_settings
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["CELERY_BROKER_URL"].startswith("redis://")


def test_workers_consume_every_queue_and_training_runs_one_at_a_time():
    services = compose()["services"]

    def queues(command: str) -> set[str]:
        return set(re.search(r"-Q (\S+)", command).group(1).split(","))

    consumed = queues(services["worker"]["command"]) | queues(services["training-worker"]["command"])
    assert consumed == {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert queues(services["training-worker"]["command"]) == {"training"}
    assert "--concurrency 1" in services["training-worker"]["command"]
    assert "flower" in services["flower"]["command"]


def test_image_installs_the_pinned_torch():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pin in ('"torch==2.14.1"', '"torchvision==0.29.1"'):
        assert pin in dockerfile
        assert pin in pyproject
    assert "collectstatic" in dockerfile
