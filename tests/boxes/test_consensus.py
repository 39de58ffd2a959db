"""boxes.consensus and Krippendorff's alpha: properties, simulated panels, the krippendorff package."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxes.agreement import alpha_units, krippendorff_alpha
from boxes.consensus import consolidate, leave_one_out_references, weighted_median
from boxes.geometry import iou_matrix
from boxes.matching import match
from boxes.simulate import PROFILES, simulate_annotator

WIDTH, HEIGHT = 1280, 720


def scene(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    n = int(rng.integers(1, 10)) if n is None else n
    heights = np.exp(rng.uniform(np.log(30), np.log(300), n))
    widths = heights * 0.4
    x, y = rng.uniform(0, WIDTH - widths), rng.uniform(0, HEIGHT - heights)
    return np.column_stack([x, y, x + widths, y + heights])


def f1_and_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, float]:
    result = match(pred, truth, iou_threshold=0.5)
    return result.count, len(pred), len(truth), float(result.ious.sum())


MIXED = ["careful", "loose", "tight", "shifted", "misses-small", "trigger-happy", "sloppy"]


@pytest.mark.parametrize("panel_size", [3, 5, 7])
def test_consensus_beats_the_average_single_annotator(panel_size):
    rng = np.random.default_rng(panel_size)
    single = {name: [0, 0, 0, 0.0] for name in MIXED[:panel_size]}
    fused = [0, 0, 0, 0.0]
    for _ in range(150):
        truth = scene(rng)
        image = {
            name: simulate_annotator(truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT).boxes
            for name in MIXED[:panel_size]
        }
        for name, boxes in image.items():
            single[name] = [a + b for a, b in zip(single[name], f1_and_iou(boxes, truth), strict=True)]
        fused = [a + b for a, b in zip(fused, f1_and_iou(consolidate(image).boxes, truth), strict=True)]

    def f1(tp, n_pred, n_truth, _):
        return 2 * tp / (n_pred + n_truth)

    def mean_iou(tp, *rest):
        return rest[-1] / tp

    average_f1 = np.mean([f1(*totals) for totals in single.values()])
    average_iou = np.mean([mean_iou(*totals) for totals in single.values()])
    assert f1(*fused) > average_f1
    assert mean_iou(*fused) > average_iou


def test_quorum_uncertain_and_ignore_regions():
    a = np.array([[0, 0, 10, 20], [100, 100, 120, 140], [200, 0, 220, 40]], dtype=float)
    b = np.array([[1, 0, 11, 20], [101, 100, 121, 141]], dtype=float)
    c = np.array([[0, 1, 10, 21], [300, 0, 320, 40]], dtype=float)
    result = consolidate(
        {"a": a, "b": b, "c": c},
        ignored={"a": np.array([False, True, False]), "b": np.array([False, True])},
    )
    assert result.quorum == 2.0
    np.testing.assert_allclose(result.boxes, [[0, 0, 10, 20]])
    assert result.support.tolist() == [3]
    assert result.members == [(("a", 0), ("b", 0), ("c", 0))]
    np.testing.assert_allclose(result.ignore, [[100.5, 100, 120.5, 140.5]])
    assert sorted(tuple(c.box) for c in result.uncertain) == [(200, 0, 220, 40), (300, 0, 320, 40)]
    assert all(c.support == 1 for c in result.uncertain)


def test_no_chaining_and_one_box_per_annotator():
    # b overlaps a and c at 0.6; a and c overlap each other less than 0.5: two clusters
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[2.5, 0, 12.5, 10]], dtype=float)
    c = np.array([[5, 0, 15, 10]], dtype=float)
    assert iou_matrix(a, c)[0, 0] < 0.5 <= iou_matrix(a, b)[0, 0]
    result = consolidate({"a": a, "b": b, "c": c}, quorum=1)
    for cluster in result.clusters:
        members = dict(cluster.members)
        assert not ("a" in members and "c" in members)
    # an annotator's two overlapping boxes never share a cluster
    twin = consolidate({"a": np.array([[0, 0, 10, 10], [0, 0, 10, 10.5]]), "b": np.array([[0, 0, 10, 10]])})
    assert all(len({m[0] for m in c.members}) == len(c.members) for c in twin.clusters)


def test_weighted_median_and_weights():
    assert weighted_median(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)) == 2.5
    assert weighted_median(np.array([1.0, 2.0, 10.0]), np.array([1.0, 1.0, 5.0])) == 10.0
    # a trusted annotator's lone box is kept when its weight is a majority
    result = consolidate(
        {"good": np.array([[0, 0, 10, 20]]), "x": np.zeros((0, 4)), "y": np.zeros((0, 4))},
        weights={"good": 3.0, "x": 1.0, "y": 1.0},
    )
    assert len(result.boxes) == 1


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(5, 120), st.floats(5, 120)).map(
        lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
    ),
    max_size=6,
)
panels = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), boxes_strategy, min_size=1, max_size=5)


def canonical(result) -> list:
    return sorted((tuple(np.round(c.box, 6)), c.support, c.is_ignore) for c in result.clusters)


@settings(max_examples=60, deadline=None)
@given(panels, st.randoms(use_true_random=False))
def test_invariant_to_annotator_and_box_order(panel, random):
    image = {a: np.array(b, dtype=float).reshape(-1, 4) for a, b in panel.items()}
    shuffled_keys = list(image)
    random.shuffle(shuffled_keys)
    shuffled = {}
    for key in shuffled_keys:
        rows = list(range(len(image[key])))
        random.shuffle(rows)
        shuffled[key] = image[key][rows] if rows else image[key]
    assert canonical(consolidate(image)) == canonical(consolidate(shuffled))


@settings(max_examples=60, deadline=None)
@given(panels, st.floats(0.25, 4.0))
def test_scaling_the_boxes_scales_the_consensus(panel, scale):
    image = {a: np.array(b, dtype=float).reshape(-1, 4) for a, b in panel.items()}
    scaled = {a: boxes * scale for a, boxes in image.items()}
    original, result = consolidate(image), consolidate(scaled)
    np.testing.assert_allclose(result.boxes, original.boxes * scale, rtol=1e-9, atol=1e-6)
    assert result.support.tolist() == original.support.tolist()


@settings(max_examples=40, deadline=None)
@given(boxes_strategy, st.integers(1, 6))
def test_identical_annotations_and_a_single_annotator_are_their_own_consensus(boxes, k):
    array = np.array(boxes, dtype=float).reshape(-1, 4)
    # boxes that overlap each other heavily could merge across annotators: keep distinct ones
    if len(array) > 1:
        ious = iou_matrix(array, array)
        np.fill_diagonal(ious, 0)
        if ious.max() >= 0.5:
            return
    expected = np.array(sorted(map(tuple, array))).reshape(-1, 4)
    same = consolidate({f"a{i}": array for i in range(k)})
    np.testing.assert_allclose(np.array(sorted(map(tuple, same.boxes))).reshape(-1, 4), expected)
    assert set(same.support.tolist()) <= {k}
    alone = consolidate({"solo": array})
    np.testing.assert_allclose(np.array(sorted(map(tuple, alone.boxes))).reshape(-1, 4), expected)


def test_alpha_equals_the_krippendorff_package():
    import krippendorff

    rng = np.random.default_rng(11)
    images = []
    for _ in range(40):
        truth = scene(rng)
        panel = {}
        for name in ("careful", "loose", "sloppy", "misses-small"):
            if rng.random() < 0.85:  # not every annotator sees every image
                panel[name] = simulate_annotator(
                    truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT
                ).boxes
        if panel:
            images.append(panel)
    units, distance, annotators = alpha_units(images)
    data = np.array([[np.nan if unit[c] is None else unit[c] for unit in units] for c in range(len(annotators))])

    def metric(v1, v2, i1, i2, n_v, dtype):
        return distance[i1, i2].astype(dtype)

    expected = krippendorff.alpha(
        reliability_data=data, value_domain=np.arange(len(distance)), level_of_measurement=metric
    )
    assert krippendorff_alpha(images) == pytest.approx(expected, abs=1e-9)
    assert 0.3 < expected < 1.0


def reference_clusters(image: dict) -> set[frozenset]:
    """Complete linkage written the slow, obvious way: every candidate pair from the best
    IoU down (ties by coordinates), merged when no annotator repeats and every pair of the
    merged members overlaps at 0.5."""
    items = [(a, i, tuple(box)) for a in sorted(image, key=repr) for i, box in enumerate(image[a])]
    boxes = np.array([item[2] for item in items], dtype=float).reshape(-1, 4)
    ious = iou_matrix(boxes, boxes)
    edges = sorted(
        (-ious[i, j], min(items[i][2], items[j][2]), max(items[i][2], items[j][2]), i, j)
        for i in range(len(items))
        for j in range(i + 1, len(items))
        if items[i][0] != items[j][0] and ious[i, j] >= 0.5
    )
    groups = {i: [i] for i in range(len(items))}
    where = list(range(len(items)))
    for *_, i, j in edges:
        a, b = where[i], where[j]
        if a == b or {items[k][0] for k in groups[a]} & {items[k][0] for k in groups[b]}:
            continue
        if min(ious[k, m] for k in groups[a] for m in groups[b]) < 0.5:
            continue
        for k in groups[b]:
            where[k] = a
        groups[a] += groups.pop(b)
    return {frozenset((items[k][0], items[k][1]) for k in group) for group in groups.values()}


crowd_boxes = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(8, 12), st.integers(8, 12)).map(
        lambda t: [t[0] * 2.0, t[1] * 2.0, t[0] * 2.0 + t[2], t[1] * 2.0 + t[3]]
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), crowd_boxes, min_size=1, max_size=5))
def test_clusters_equal_the_slow_greedy_merge_in_crowds(panel):
    # boxes on a coarse grid overlap a lot, with exact IoU ties: the clique shortcut and
    # the bit-mask merge must give the partition the slow merge gives
    image = {a: np.array(b, dtype=float).reshape(-1, 4) for a, b in panel.items()}
    got = {frozenset(c.members) for c in consolidate(image).clusters}
    assert got == reference_clusters(image)


def leave_one_out_by_hand(image: dict, quorum_share=None) -> dict:
    result = {}
    for annotator in image:
        others = {a: b for a, b in image.items() if a != annotator}
        quorum = None if quorum_share is None else quorum_share * len(others)
        result[annotator] = consolidate(others, quorum=quorum).boxes
    return result


@settings(max_examples=120, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), crowd_boxes, min_size=2, max_size=5)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), boxes_strategy, min_size=2, max_size=5),
    st.sampled_from([None, 0.3, 0.75]),
)
def test_leave_one_out_references_equal_consolidating_the_others(panel, quorum_share):
    image = {a: np.array(b, dtype=float).reshape(-1, 4) for a, b in panel.items()}
    got = leave_one_out_references(image, quorum_share=quorum_share)
    expected = leave_one_out_by_hand(image, quorum_share)
    assert set(got) == set(expected)
    for annotator, boxes in expected.items():
        np.testing.assert_array_equal(got[annotator], boxes)


def test_leave_one_out_references_on_simulated_panels():
    rng = np.random.default_rng(21)
    for _ in range(60):
        truth = scene(rng)
        image = {
            name: simulate_annotator(truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT).boxes
            for name in MIXED[: int(rng.integers(2, 8))]
        }
        got = leave_one_out_references(image)
        for annotator, boxes in leave_one_out_by_hand(image).items():
            np.testing.assert_array_equal(got[annotator], boxes)


def split_pedestrian() -> dict:
    """One 40 x 100 pedestrian boxed by seven: three a little to the left, three a little
    to the right (every box overlaps its own side's at IoU >= 0.5, but the outermost pair
    only at 25 / 55 = 0.45, so complete linkage makes two clusters of three), one nothing."""

    def box(dx):
        return [100.0 + dx, 100.0, 140.0 + dx, 200.0]

    image = {name: np.array([box(dx)]) for name, dx in zip("abcdef", [-7, -6, -5, 6, 7, 8], strict=True)}
    image["g"] = np.zeros((0, 4))
    return image


def test_a_pedestrian_split_in_two_parts_is_judged_on_both():
    image = split_pedestrian()
    consensus = consolidate(image)
    assert len(consensus.clusters) == 2 and all(c.support == 3 for c in consensus.clusters)
    # neither part reaches the majority of seven alone; together they are six of seven
    assert len(consensus.boxes) == 1
    assert {a for a, _ in consensus.kept[0].members} == {"a", "b", "c"}  # the first of equals stands for both
    assert len(consensus.uncertain) == 1
    # the human baseline's leave-one-out references judge parts the same way
    references = leave_one_out_references(image)
    assert len(references["g"]) == 1 and len(references["a"]) == 1


def test_parts_that_share_an_annotator_are_two_pedestrians():
    image = split_pedestrian()
    # "a" boxed both figures and "d" neither: two people standing close, three boxes each
    image["a"] = np.array([[93.0, 100.0, 133.0, 200.0], [106.0, 100.0, 146.0, 200.0]])
    image["d"] = np.zeros((0, 4))
    consensus = consolidate(image)
    assert sorted(c.support for c in consensus.clusters) == [3, 3]
    assert len(consensus.boxes) == 0


def test_two_people_on_top_of_each_other_are_two_boxes_however_the_clusters_fall():
    from boxes.estimates import AnnotatorReliability, Reliability
    from boxes.reliability import COINCIDENCE

    # from a simulated panel of seven: two pedestrians at IoU 0.85, boxed twice by six of
    # the seven; complete linkage makes four clusters of them, each a mix of both
    drawn = {
        "average": [[786, 303, 836, 451], [773, 294, 862, 464]],
        "loose": [[781, 277, 852, 465], [786, 285, 862, 478]],
        "tight": [[785, 303, 843, 448], [786, 302, 853, 457]],
        "shifted": [[794, 307, 856, 464], [791, 298, 866, 476]],
        "misses-small": [[788, 301, 853, 452], [784, 294, 855, 468]],
        "trigger-happy": [[773, 301, 840, 460], [778, 295, 853, 460]],
        "hasty": [[776, 297, 852, 460]],
    }
    image = {name: np.array(boxes, dtype=float) for name, boxes in drawn.items()}
    truth = np.array([[783, 297, 847, 457], [781, 291, 852, 467]], dtype=float)
    # the rates the soft EM estimated for this panel (400 images)
    estimated = {"average": (0.048, 0.188), "loose": (0.001, 0.001), "tight": (0.003, 0.014),
                 "shifted": (0.001, 0.001), "misses-small": (0.079, 0.001), "trigger-happy": (0.001, 0.797),
                 "hasty": (0.342, 0.014)}  # fmt: skip
    fitted = {
        name: AnnotatorReliability(
            false_positive_rate=0.01, miss_rate=miss, boundary_noise=0.1, images=400, spurious_per_image=start
        )
        for name, (miss, start) in estimated.items()
    }
    reliability = Reliability(
        annotators=fitted,
        iterations=1,
        converged=True,
        prior=0.815,
        coincidence=COINCIDENCE,
    )
    plain, weighted = consolidate(image), consolidate(image, weights=reliability)
    assert len(weighted.clusters) == 4
    # three careful annotators' boxes make a third cluster strong enough to keep, but no
    # annotator drew three boxes there: two are kept, as the majority keeps, both real
    assert len(weighted.boxes) == len(plain.boxes) == 2
    assert match(weighted.boxes, truth).count == 2
    assert len(weighted.uncertain) == 2
