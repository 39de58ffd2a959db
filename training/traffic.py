"""The served traffic, as a data curve asks for it (how many images the API clients sent,
and what they looked like). Training sits below serving in the layers, so it cannot read
serving's prediction log; serving registers the function that does (serving/apps.py), and
without it (serving not installed) there is no served traffic to weigh the conditions by."""

from collections.abc import Callable
from datetime import datetime

from projects.models import Project

# (project, since) -> one dict per answered image: width, height, brightness, contrast, created_at
ServedImages = Callable[[Project, datetime], list[dict]]

_provider: ServedImages | None = None


def served_images_register(provider: ServedImages) -> None:
    global _provider
    _provider = provider


def served_images(project: Project, since: datetime) -> list[dict]:
    """The images API clients sent to the project's models since `since` (answered, shadow
    runs left out), with the features serving logs; [] when no provider is registered."""
    return _provider(project, since) if _provider is not None else []
