"""`manage.py import_images PROJECT FOLDER`: the same checks as uploads, one line per file."""

import pytest
from django.core.management import CommandError, call_command

from datasets.models import Image
from tests import images

pytestmark = pytest.mark.django_db


def test_import_folder_stores_good_reports_bad_and_duplicates(tmp_path, people, capsys):
    folder = tmp_path / "photos"
    (folder / "day").mkdir(parents=True)
    (folder / "day" / "a.jpg").write_bytes(images.image_bytes(seed=1))
    (folder / "day" / "b.png").write_bytes(images.image_bytes("PNG", seed=2))
    (folder / "copy.jpg").write_bytes(images.image_bytes(seed=1))
    (folder / "broken.jpg").write_bytes(images.truncated_jpeg())
    (folder / "readme.txt").write_text("not an image")

    call_command("import_images", "Project A", str(folder), "--condition", "weather=night")

    out, err = capsys.readouterr()
    # readme.txt is skipped by its suffix; files go in sorted order, so copy.jpg comes first
    assert "4 files: 2 stored, 1 duplicates, 1 refused." in out
    assert "duplicate  day/a.jpg: This project already has this image" in out
    assert "refused    broken.jpg: The image could not be decoded" in err
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["copy.jpg", "day/b.png"]
    assert set(Image.objects.values_list("conditions__weather", flat=True)) == {"night"}


def test_import_refuses_unknown_project_and_bad_condition(tmp_path, people):
    with pytest.raises(CommandError, match="No project 'Nope'"):
        call_command("import_images", "Nope", str(tmp_path))
    with pytest.raises(CommandError, match="use DIMENSION=VALUE"):
        call_command("import_images", str(people.project.pk), str(tmp_path), "--condition", "rain")
