"""The synthetic street world: deterministic scenes whose conditions change the pixels."""

import numpy as np
import pytest
from django.core.management import call_command

from datasets.models import Image
from demo.models import SyntheticTruth
from demo.synthetic import MAX_HEIGHT, MIN_HEIGHT, VOCABULARY, condition_cycle, render_scene
from projects.models import Project

BASE = {"weather": "sun", "setting": "street", "resolution": "hd"}


def pixels(scene) -> np.ndarray:
    return np.asarray(scene.image, dtype=np.float32)


def test_a_seed_always_gives_the_same_scene():
    first, again = render_scene(seed=11, conditions=BASE), render_scene(seed=11, conditions=BASE)
    other = render_scene(seed=12, conditions=BASE)
    assert np.array_equal(pixels(first), pixels(again))
    np.testing.assert_array_equal(first.boxes, again.boxes)
    assert not np.array_equal(pixels(first), pixels(other))


def test_boxes_are_inside_the_image_and_span_the_height_range():
    heights, visible, ignore_count = [], [], 0
    for seed in range(60):
        scene = render_scene(seed=seed, conditions=BASE)
        width, height = scene.image.size
        boxes = scene.boxes
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= height).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        heights += list(boxes[:, 3] - boxes[:, 1])
        visible += list(scene.visible)
        ignore_count += len(scene.ignore)
    heights = np.array(heights)
    # figures are 20 to 300 px tall (line caps may add a pixel or two)
    assert heights.min() >= MIN_HEIGHT - 3 and heights.max() <= MAX_HEIGHT + 3
    assert (heights < 40).sum() >= 20 and (heights > 150).sum() >= 10
    # some are partly hidden by cars and poles, most are not; some scenes have crowds
    visible = np.array(visible)
    assert 0.05 < (visible < 0.8).mean() < 0.5
    assert ignore_count >= 10


def test_indoor_scenes_have_no_occluders():
    scene = render_scene(seed=5, conditions={"weather": "sun", "setting": "indoor", "resolution": "hd"})
    assert len(scene.boxes) > 0
    assert scene.visible.min() == 1.0  # no occluders indoors


@pytest.mark.parametrize(
    ("dimension", "value"),
    [
        ("weather", "overcast"),
        ("weather", "rain"),
        ("weather", "night"),
        ("setting", "behind-glass"),
        ("resolution", "low"),
    ],
)
def test_each_condition_changes_the_pixels_the_way_it_should(dimension, value):
    base = pixels(render_scene(seed=21, conditions=BASE))
    changed_scene = render_scene(seed=21, conditions={**BASE, dimension: value})
    changed = pixels(changed_scene)
    assert not np.array_equal(base, changed)
    if value == "night":
        assert changed.mean() < base.mean() * 0.4
    if value == "overcast":
        assert changed.std(axis=2).mean() < base.std(axis=2).mean()  # less saturated
    if value == "low":
        # sharp edges become ramps: far fewer large steps between neighbouring pixels
        def sharp(array):
            return (np.abs(np.diff(array, axis=1)) > 20).mean()

        assert sharp(changed) < sharp(base) * 0.5
    if value == "rain":
        assert changed.mean() < base.mean()
    # the people are where they were: conditions change pixels, not the truth
    np.testing.assert_array_equal(changed_scene.boxes, render_scene(seed=21, conditions=BASE).boxes)


def test_condition_cycle_covers_the_vocabulary():
    cycle = condition_cycle()
    assert len(cycle) == 4 * 3 * 2
    for dimension, values in VOCABULARY.items():
        assert {combo[dimension] for combo in cycle} == set(values)


@pytest.mark.django_db
def test_make_synthetic_project_ingests_scenes_with_their_truth(capsys):
    call_command("make_synthetic_project", "--images", "30", "--seed", "4")
    project = Project.objects.get(name="Synthetic streets, seed 4")
    assert project.images.count() == 30
    assert SyntheticTruth.objects.filter(image__project=project).count() == 30
    assert project.images.filter(is_synthetic=True).count() == 30
    for dimension, values in VOCABULARY.items():
        assert set(project.images.values_list(f"conditions__{dimension}", flat=True)) == set(values)
    truth = SyntheticTruth.objects.select_related("image").first()
    scene = render_scene(seed=truth.seed, conditions=truth.image.conditions)
    assert truth.boxes == scene.boxes.round(2).tolist()
    assert (truth.image.width, truth.image.height) == scene.image.size
    # running again adds nothing: the same seed draws the same scenes
    call_command("make_synthetic_project", "--images", "30", "--seed", "4")
    assert Image.objects.filter(project=project).count() == 30
    assert "0 stored, 30 already there" in capsys.readouterr().out
