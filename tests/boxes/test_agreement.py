"""boxes.agreement.pairwise on hand cases and simulated panels."""

import numpy as np
import pytest

from boxes.agreement import krippendorff_alpha, measure, pairwise
from boxes.consensus import consolidate
from boxes.geometry import iou_matrix
from boxes.matching import match
from boxes.simulate import PROFILES, simulate_annotator


def test_hand_case_f1_and_mean_iou():
    images = [
        {"ann": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "bob": np.array([[0, 0, 10, 10]])},
        {"ann": np.zeros((0, 4)), "bob": np.zeros((0, 4))},
        {"ann": np.array([[0, 0, 10, 10]]), "cid": np.array([[0, 0, 10, 10]])},
    ]
    agreement = pairwise(images)
    ann_bob = agreement.pairs["ann", "bob"]
    assert (ann_bob.images, ann_bob.true_positives, ann_bob.boxes_a, ann_bob.boxes_b) == (2, 1, 2, 1)
    assert ann_bob.f1 == pytest.approx(2 / 3)
    assert ann_bob.mean_iou == pytest.approx(1.0)
    assert agreement.pairs["bob", "cid"].images == 0
    matrix = agreement.f1_matrix
    assert np.isnan(matrix[1, 2]) and matrix[0, 2] == pytest.approx(1.0)


def test_careful_annotators_agree_more_than_sloppy_ones():
    rng = np.random.default_rng(3)
    images = []
    for _ in range(80):
        n = int(rng.integers(1, 8))
        xy = rng.uniform(0, 1000, (n, 2))
        truth = np.hstack([xy, xy + rng.uniform(30, 200, (n, 2))])
        images.append(
            {
                name: simulate_annotator(truth, profile=PROFILES[profile], rng=rng, width=1400, height=1400).boxes
                for name, profile in (("c1", "careful"), ("c2", "careful"), ("s1", "sloppy"), ("s2", "sloppy"))
            }
        )
    agreement = pairwise(images)
    assert agreement.pairs["c1", "c2"].f1 > agreement.pairs["s1", "s2"].f1 + 0.1
    assert agreement.pairs["c1", "c2"].mean_iou > agreement.pairs["s1", "s2"].mean_iou


WIDTH, HEIGHT = 1280, 720


def simulated_images(count: int, *, seed: int, crowded: bool = False) -> list[dict]:
    """Panels of four profiles; not everyone sees every image; crowded scenes put people
    shoulder to shoulder so that boxes have several candidates at the threshold."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        n = int(rng.integers(0, 9))
        heights = np.exp(rng.uniform(np.log(30), np.log(300), n))
        if crowded and n:
            x = rng.uniform(0, 200) + np.arange(n) * heights.mean() * 0.25
            y = np.full(n, rng.uniform(0, 300))
        else:
            x, y = rng.uniform(0, WIDTH - heights * 0.4), rng.uniform(0, HEIGHT - heights)
        truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
        panel = {}
        for name in ("careful", "loose", "sloppy", "trigger-happy"):
            if rng.random() < 0.85:
                panel[name] = simulate_annotator(
                    truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT
                ).boxes
        images.append(panel)
    return images


@pytest.mark.parametrize("crowded", [False, True])
def test_pair_counts_equal_hungarian_matching_of_each_pair(crowded):
    images = simulated_images(120, seed=4, crowded=crowded)
    agreement = pairwise(images)
    for (a, b), pair in agreement.pairs.items():
        tp = iou_sum = shared = 0
        for image in images:
            if a in image and b in image:
                result = match(image[a], image[b], iou_threshold=0.5)
                tp, iou_sum, shared = tp + result.count, iou_sum + result.ious.sum(), shared + 1
        assert (pair.images, pair.true_positives) == (shared, tp)
        assert pair.iou_sum == pytest.approx(iou_sum, abs=1e-9)


def package_alpha(images: list[dict]) -> float:
    """Krippendorff's alpha by the krippendorff package, with units and distances built
    here from the consensus clusters: 1 - IoU within an image, 1 across images."""
    import krippendorff

    annotators = sorted({a for image in images for a in image})
    columns, boxes, image_of = [], [], []
    for index, image in enumerate(images):
        for cluster in consolidate(image).clusters:
            members = dict(cluster.members)
            column = []
            for annotator in annotators:
                if annotator not in image:
                    column.append(np.nan)
                elif annotator in members:
                    boxes.append(image[annotator][members[annotator]])
                    image_of.append(index)
                    column.append(len(boxes))
                else:
                    column.append(0)
            columns.append(column)
    boxes, image_of = np.array(boxes).reshape(-1, 4), np.array(image_of)
    distance = np.ones((len(boxes) + 1, len(boxes) + 1))
    distance[0, 0] = 0
    same_image = image_of[:, None] == image_of[None, :]
    distance[1:, 1:] = np.where(same_image, 1 - iou_matrix(boxes, boxes), 1.0)
    np.fill_diagonal(distance, 0)

    def metric(v1, v2, i1, i2, n_v, dtype):
        return distance[i1, i2].astype(dtype)

    return krippendorff.alpha(
        reliability_data=np.array(columns).T, value_domain=np.arange(len(distance)), level_of_measurement=metric
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alpha_equals_the_krippendorff_package_on_independently_encoded_units(seed):
    images = simulated_images(30, seed=seed, crowded=seed == 3)
    images.append({"careful": np.zeros((0, 4)), "loose": np.zeros((0, 4))})  # both saw nobody
    images.append({"careful": np.array([[10.0, 10, 50, 110]])})  # one annotator: not pairable
    assert krippendorff_alpha(images) == pytest.approx(package_alpha(images), abs=1e-9)


def test_bootstrap_draws_are_the_figures_of_resampled_image_lists():
    images = simulated_images(40, seed=8)
    report = measure(images, bootstrap=200, seed=5)
    picks = np.random.default_rng(5).integers(0, len(images), size=(100, len(images)))
    for row in range(3):
        resampled = measure([images[i] for i in picks[row]], bootstrap=0)
        for name in ("f1", "mean_pair_f1", "mean_iou", "alpha"):
            assert report.draws[name][row] == pytest.approx(getattr(resampled, name), abs=1e-9)
    again = measure(images, bootstrap=200, seed=5)
    assert again.intervals == report.intervals
    for name in ("f1", "mean_pair_f1", "mean_iou", "alpha"):
        low, high = report.intervals[name]
        assert low < getattr(report, name) < high
        assert len(report.draws[name]) == 200


def test_intervals_narrow_as_images_grow():
    small = measure(simulated_images(30, seed=2), bootstrap=300)
    large = measure(simulated_images(480, seed=2), bootstrap=300)

    def width(report, name):
        return report.intervals[name][1] - report.intervals[name][0]

    for name in ("f1", "alpha", "mean_iou"):
        assert width(large, name) < 0.5 * width(small, name)  # 16x the images: about 1/4 the width


def test_per_image_figures_and_least_agreed():
    box = np.array([[100.0, 100, 140, 200]])
    images = [
        {"a": box, "b": box, "c": box},  # full agreement
        {"a": box, "b": box + np.array([0, 0, 30, 0]), "c": np.zeros((0, 4))},  # c misses, b draws wide
        {"a": np.zeros((0, 4)), "b": np.zeros((0, 4))},  # both saw nobody
        {"a": box},  # one annotator
    ]
    report = measure(images, bootstrap=0)
    figures = report.images
    assert figures.annotators.tolist() == [3, 3, 2, 1]
    assert figures.f1[0] == 1.0 and figures.alpha[0] == 1.0 and figures.mean_iou[0] == 1.0
    # a-b match at IoU 40x100 / 70x100 = 4/7; a-c and b-c match nothing: 2 x 1 / (2 + 1 + 1)
    assert figures.f1[1] == pytest.approx(0.5) and figures.mean_iou[1] == pytest.approx(4 / 7)
    assert figures.f1[2] == 1.0 and np.isnan(figures.alpha[2])  # nothing to disagree on
    assert np.isnan(figures.f1[3]) and np.isnan(figures.alpha[3])
    assert figures.alpha[1] < figures.alpha[0]
    assert figures.least_agreed(2).tolist() == [1, 0]
    assert figures.units.tolist() == [1, 1, 0, 1]


def test_a_consolidator_with_other_parameters_gives_the_same_figures():
    from boxes.consensus import consolidate_image

    images = simulated_images(40, seed=12, crowded=False)
    plain = measure(images, bootstrap=0)
    seen = []

    def consolidator(index, image):
        seen.append(index)
        return consolidate_image(image, quorum=1, fuse="mean", weights={a: 1.0 + len(a) for a in image})

    other = measure(images, bootstrap=0, consolidator=consolidator)
    assert seen == list(range(len(images)))
    assert (other.alpha, other.f1, other.mean_iou) == (plain.alpha, plain.f1, plain.mean_iou)
    assert (other.images.uncertain <= plain.images.uncertain).all()  # a quorum of one keeps more
