"""The split report: counts per split x condition, resolutions, and warnings."""

import pytest
from django.urls import reverse

from datasets.splits import split_report
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def add(project, n, split, conditions, size=(1920, 1080)):
    ImageFactory.create_batch(n, project=project, width=size[0], height=size[1], conditions=conditions, split=split)


def test_counts_resolutions_and_warnings(people):
    project = people.project
    add(project, 40, "train", {"weather": "rain"})
    add(project, 5, "val", {"weather": "rain"})
    add(project, 5, "test", {"weather": "rain"}, size=(320, 240))
    add(project, 30, "train", {"weather": "night"})  # no night image in val or test
    add(project, 20, "train", {"weather": "sun"})
    add(project, 1, "val", {"weather": "sun"})  # thin: 2.6 expected in val
    add(project, 3, "test", {"weather": "sun"})

    report = split_report(project=project)

    assert report.total == 104
    assert report.counts == {"train": 90, "val": 6, "test": 8}
    rows = {(row.dimension, row.value): row for row in report.conditions}
    assert rows[("weather", "rain")].counts == {"train": 40, "val": 5, "test": 5}
    assert rows[("weather", "overcast")].total == 0
    assert rows[("setting", "indoor")].total == 0
    assert report.resolutions["1 to 2.1 MP (HD)"] == {"train": 90, "val": 6, "test": 3}
    assert report.resolutions["under 0.3 MP"] == {"train": 0, "val": 0, "test": 5}
    warnings = {(w.level, w.value, w.split): w for w in report.warnings}
    assert set(warnings) == {("missing", "night", "val"), ("missing", "night", "test"), ("thin", "sun", "val")}
    assert warnings[("missing", "night", "val")].message == (
        "val has no weather=night images (about 3.0 expected of 30)."
    )
    assert warnings[("thin", "sun", "val")].message == "val has only 1 weather=sun images (about 2.4 expected of 24)."


def test_report_through_the_api_and_the_page(client, api_client, people):
    add(people.project, 8, "train", {"weather": "rain"})
    api_client.force_login(people.reviewer)
    body = api_client.get(reverse("api-split-report", kwargs={"project_id": people.project.pk})).json()
    assert body["counts"] == {"train": 8, "val": 0, "test": 0}
    # 8 images promise under one image to val and test: too few to warn about
    assert body["warnings"] == []
    client.force_login(people.reviewer)
    html = client.get(reverse("project-splits", kwargs={"project_id": people.project.pk})).content.decode()
    assert "Images per split and condition" in html
    assert "<td>rain</td><td>8</td><td>0</td><td>0</td><td>8</td>" in html
