"""coco_evaluate gives pycocotools' and faster-coco-eval's numbers on random cases, and keeps
pycocotools' quirks: zero-area boxes, ground truths with id 0, annotations sharing an id."""

import contextlib
import io
import json
import warnings

import numpy as np
import pytest

from boxes.metrics import STAT_KEYS, coco_box_iou, coco_evaluate


def random_case(seed: int) -> tuple[dict, list]:
    rng = np.random.default_rng(seed)
    n_images = int(rng.integers(1, 8))
    n_categories = int(rng.integers(1, 3))
    crowded = seed % 25 == 0  # one image with up to 300 ground truths, clustered, so detections have many candidates
    integral = rng.random() < 0.3  # integer boxes: exact IoU ties between ground truths
    images, annotations, detections = [], [], []
    annotation_id = int(rng.integers(0, 2))  # sometimes an annotation with id 0, which pycocotools reads as no match
    for image_id in range(1, n_images + 1):
        width, height = int(rng.integers(100, 1200)), int(rng.integers(100, 900))
        images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id}.jpg"})
        truths = []
        count = int(rng.integers(100, 301)) if crowded and image_id == 1 else int(rng.integers(0, 21))
        for _ in range(count if rng.random() > 0.1 else 0):
            if truths and rng.random() < (0.7 if crowded else 0.15):
                # a near copy of an earlier ground truth (a group of pedestrians), sometimes exact
                (x, y, w, h), category = truths[int(rng.integers(len(truths)))]
                if rng.random() < 0.8:
                    x, y = x + float(rng.normal(0, 0.03 * w)), y + float(rng.normal(0, 0.03 * h))
            else:
                w = float(np.exp(rng.uniform(np.log(4), np.log(min(width, height) * 0.8))))
                h = float(np.exp(rng.uniform(np.log(4), np.log(min(width, height) * 0.8))))
                x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
                category = int(rng.integers(1, n_categories + 1))
            if rng.random() < 0.05:  # a degenerate box: zero width or zero height
                w, h = (0.0, h) if rng.random() < 0.5 else (w, 0.0)
            crowd = int(rng.random() < 0.08)
            box = [round(v) if integral else round(v, 2) for v in (x, y, w, h)]
            # the area field, not the box, sorts ground truths into area ranges (a mask is smaller than its box)
            area = box[2] * box[3] * (float(rng.uniform(0.5, 1.0)) if rng.random() < 0.2 else 1.0)
            annotations.append(
                {"id": annotation_id, "image_id": image_id, "category_id": category, "bbox": box,
                 "area": area, "iscrowd": crowd}
            )  # fmt: skip
            truths.append((box, category))
            annotation_id += 1
        for _ in range(int(rng.integers(0, 301)) if rng.random() > 0.1 else 0):
            if truths and rng.random() < 0.6:
                (x, y, w, h), category = truths[int(rng.integers(len(truths)))]
                if rng.random() < 0.1:
                    box = [x, y, w, h]  # exactly on a ground truth, degenerate ones included
                else:
                    jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
                    box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
            else:
                w, h = float(rng.uniform(2, width / 2)), float(rng.uniform(2, height / 2))
                if rng.random() < 0.03:
                    w, h = (0.0, h) if rng.random() < 0.5 else (w, 0.0)
                box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]
                # categories without any ground truth here, and one outside `categories`, which is left out
                category = int(rng.integers(1, n_categories + 3))
            # rounded scores make ties, which the stable sort must order as pycocotools does
            score = round(float(rng.random()), 2 if rng.random() < 0.5 else 6)
            detections.append(
                {"image_id": image_id, "category_id": category, "bbox": [float(v) for v in box], "score": score}
            )
    # category n + 1 has no ground truth at all; n + 2 is not a category
    categories = [{"id": c, "name": f"class{c}"} for c in range(1, n_categories + 2)]
    return {"images": images, "annotations": annotations, "categories": categories}, detections


def pycocotools_stats(gt: dict, dt: list) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        results = coco.loadRes(json.loads(json.dumps(dt)))
        evaluation = COCOeval(coco, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


def faster_coco_eval_stats(gt: dict, dt: list) -> list[float]:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # it warns of annotation id 0, which it reads as "no match" as pycocotools does
        warnings.filterwarnings("ignore", message="Found annotation id 0")
        coco = COCO(json.loads(json.dumps(gt)))
        results = coco.loadRes(json.loads(json.dumps(dt)))
        evaluation = COCOeval_faster(coco, results, "bbox", print_function=lambda *a, **k: None)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


def no_detection_stats(gt: dict) -> list[float]:
    """What any COCO evaluation gives without detections (pycocotools cannot load an empty
    result list): 0 where an area range has a ground truth that is not ignored, else -1."""
    categories = {c["id"] for c in gt["categories"]}
    images = {i["id"] for i in gt["images"]}
    areas = [
        a["area"] for a in gt["annotations"]
        if not a["iscrowd"] and a["category_id"] in categories and a["image_id"] in images
    ]  # fmt: skip

    def value(low, high):
        return 0.0 if any(low <= area <= high for area in areas) else -1.0

    everything, small, medium, large = (0, 1e10), (0, 32**2), (32**2, 96**2), (96**2, 1e10)
    return [value(*everything)] * 3 + [value(*small), value(*medium), value(*large)] + [value(*everything)] * 3


@pytest.mark.parametrize("seed", range(200))
def test_coco_evaluate_equals_pycocotools(seed):
    gt, dt = random_case(seed)
    ours = coco_evaluate(gt, dt)
    expected = pycocotools_stats(gt, dt) if dt else no_detection_stats(gt)
    np.testing.assert_allclose([ours[key] for key in STAT_KEYS], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(200))
def test_coco_evaluate_equals_faster_coco_eval(seed):
    gt, dt = random_case(seed)
    ours = coco_evaluate(gt, dt)
    expected = faster_coco_eval_stats(gt, dt) if dt else no_detection_stats(gt)
    np.testing.assert_allclose([ours[key] for key in STAT_KEYS], expected, rtol=0, atol=1e-9)


def test_hand_case_perfect_and_empty():
    gt = {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 100], "area": 5000, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }
    perfect = coco_evaluate(gt, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.9}])
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AR100"] == pytest.approx(1.0)
    assert perfect["APs"] == -1.0  # no small ground truth
    miss = coco_evaluate(gt, [{"image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.9}])
    assert miss["AP"] == 0.0 and miss["AR100"] == 0.0


def pedestrians(*annotations: tuple[int, int, list[float], float]) -> dict:
    """A COCO dict of (annotation id, image id, box, area field) pedestrians on images 1 and 2."""
    return {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"id": i, "image_id": image, "category_id": 1, "bbox": box, "area": area, "iscrowd": 0}
            for i, image, box, area in annotations
        ],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }


def test_zero_area_boxes_have_iou_zero_as_in_pycocotools():
    from pycocotools import mask

    # given zero-width and zero-height boxes, two identical zero-area pairs among them, and crowds
    dt = [[0, 0, 0, 0], [5, 5, 0, 10], [1, 1, 4, 4], [10, 10, 0, 0], [3, 3, 6, 0]]
    gt = [[0, 0, 0, 0], [5, 5, 0, 10], [0, 0, 4, 4], [10, 10, 0, 0], [0, 0, 20, 20]]
    iscrowd = [0, 0, 0, 1, 1]
    # when
    ious = coco_box_iou(np.array(dt, dtype=float), np.array(gt, dtype=float), np.array(iscrowd))
    # then: 0 wherever the boxes do not overlap, as maskApi.c's bbIou, never 0 / 0 = NaN
    np.testing.assert_array_equal(ious, mask.iou(dt, gt, iscrowd))
    assert ious[0, 0] == 0.0 and ious[1, 1] == 0.0 and ious[3, 3] == 0.0
    assert ious[2, 4] == 1.0  # against a crowd: intersection over the detection's area
    # and a detection exactly on a zero-area ground truth does not find it
    gt_dict = pedestrians((1, 1, [10.0, 10.0, 0.0, 50.0], 0.0), (2, 1, [100.0, 10.0, 40.0, 50.0], 2000.0))
    found = [
        {"image_id": 1, "category_id": 1, "bbox": [10.0, 10.0, 0.0, 50.0], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [100.0, 10.0, 40.0, 50.0], "score": 0.8},
    ]
    ours = coco_evaluate(gt_dict, found)
    np.testing.assert_allclose([ours[k] for k in STAT_KEYS], pycocotools_stats(gt_dict, found), rtol=0, atol=1e-9)
    assert ours["AR100"] == 0.5


def test_a_ground_truth_with_id_0_leaves_its_detection_unmatched_as_in_pycocotools():
    # given two pedestrians found exactly, the first one (annotation id 0) by the higher score;
    # its area field says medium (2000) while its box is small (30 x 30 = 900)
    gt = pedestrians((0, 1, [10.0, 10.0, 30.0, 30.0], 2000.0), (7, 1, [100.0, 10.0, 40.0, 50.0], 2000.0))
    dt = [
        {"image_id": 1, "category_id": 1, "bbox": [10.0, 10.0, 30.0, 30.0], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [100.0, 10.0, 40.0, 50.0], "score": 0.8},
    ]
    # when
    ours = coco_evaluate(gt, dt)
    # then: accumulate reads the matched id 0 as "no match"
    np.testing.assert_allclose([ours[k] for k in STAT_KEYS], pycocotools_stats(gt, dt), rtol=0, atol=1e-9)
    # "all": the first detection is a false positive, yet its ground truth is used up:
    # precision 1/2 at recall 1/2, which 51 of the 101 recall points reach
    assert ours["AR100"] == 0.5 and ours["AP"] == pytest.approx(0.5 * 51 / 101)
    # "medium": the first detection, unmatched as far as accumulate knows, lies outside the range: ignored
    assert ours["APm"] == pytest.approx(51 / 101)
    # with any other id both are true positives
    gt["annotations"][0]["id"] = 1
    assert coco_evaluate(gt, dt)["AP"] == pytest.approx(1.0)


def test_annotations_sharing_an_id_all_stand_for_the_last_one_as_in_pycocotools():
    # given annotation 5 twice, on image 1 and then on image 2, and annotation 6 on image 1
    gt = pedestrians(
        (5, 1, [10.0, 10.0, 40.0, 50.0], 2000.0), (6, 1, [100.0, 10.0, 40.0, 50.0], 2000.0),
        (5, 2, [200.0, 10.0, 40.0, 50.0], 2000.0),
    )  # fmt: skip
    dt = [
        {"image_id": image, "category_id": 1, "bbox": annotation["bbox"], "score": 0.9 - 0.1 * n}
        for n, (image, annotation) in enumerate(zip((1, 1, 2), gt["annotations"], strict=True))
    ]
    # when
    ours = coco_evaluate(gt, dt)
    # then: image 2 holds the last annotation 5 twice, image 1 only annotation 6
    np.testing.assert_allclose([ours[k] for k in STAT_KEYS], pycocotools_stats(gt, dt), rtol=0, atol=1e-9)
    assert ours["AR100"] == pytest.approx(2 / 3)


def test_a_detection_of_an_unknown_image_is_an_error():
    gt = pedestrians((1, 1, [10.0, 10.0, 40.0, 50.0], 2000.0))
    with pytest.raises(ValueError, match="image 3"):
        coco_evaluate(gt, [{"image_id": 3, "category_id": 1, "bbox": [10.0, 10.0, 40.0, 50.0], "score": 0.9}])
