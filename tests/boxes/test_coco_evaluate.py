"""coco_evaluate gives pycocotools' and faster-coco-eval's numbers on random cases."""

import contextlib
import io
import json

import numpy as np
import pytest

from boxes.metrics import STAT_KEYS, coco_evaluate


def random_case(seed: int) -> tuple[dict, list]:
    rng = np.random.default_rng(seed)
    n_images = int(rng.integers(1, 8))
    n_categories = int(rng.integers(1, 3))
    images, annotations, detections = [], [], []
    annotation_id = 1
    for image_id in range(1, n_images + 1):
        width, height = int(rng.integers(100, 1200)), int(rng.integers(100, 900))
        images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id}.jpg"})
        truths = []
        for _ in range(int(rng.integers(0, 21)) if rng.random() > 0.1 else 0):
            w = float(np.exp(rng.uniform(np.log(4), np.log(min(width, height) * 0.8))))
            h = float(np.exp(rng.uniform(np.log(4), np.log(min(width, height) * 0.8))))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            category = int(rng.integers(1, n_categories + 1))
            crowd = int(rng.random() < 0.08)
            box = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
            annotations.append(
                {"id": annotation_id, "image_id": image_id, "category_id": category, "bbox": box,
                 "area": box[2] * box[3], "iscrowd": crowd}
            )  # fmt: skip
            truths.append((box, category))
            annotation_id += 1
        for _ in range(int(rng.integers(0, 301)) if rng.random() > 0.1 else 0):
            if truths and rng.random() < 0.6:
                (x, y, w, h), category = truths[int(rng.integers(len(truths)))]
                jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
            else:
                w, h = float(rng.uniform(2, width / 2)), float(rng.uniform(2, height / 2))
                box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]
                category = int(rng.integers(1, n_categories + 1))
            # rounded scores make ties, which the stable sort must order as pycocotools does
            score = round(float(rng.random()), 2 if rng.random() < 0.5 else 6)
            detections.append(
                {"image_id": image_id, "category_id": category, "bbox": [float(v) for v in box], "score": score}
            )
    categories = [{"id": c, "name": f"class{c}"} for c in range(1, n_categories + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}, detections


def pycocotools_stats(gt: dict, dt: list) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        if not dt:
            return None
        results = coco.loadRes(json.loads(json.dumps(dt)))
        evaluation = COCOeval(coco, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


def faster_coco_eval_stats(gt: dict, dt: list) -> list[float]:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(json.loads(json.dumps(gt)))
        results = coco.loadRes(json.loads(json.dumps(dt)))
        evaluation = COCOeval_faster(coco, results, "bbox", print_function=lambda *a, **k: None)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


@pytest.mark.parametrize("seed", range(200))
def test_coco_evaluate_equals_pycocotools(seed):
    gt, dt = random_case(seed)
    expected = pycocotools_stats(gt, dt)
    if expected is None:  # pycocotools cannot load an empty result list
        assert coco_evaluate(gt, dt)["AP"] == -1.0 or not dt
        return
    ours = coco_evaluate(gt, dt)
    np.testing.assert_allclose([ours[key] for key in STAT_KEYS], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(0, 200, 10))
def test_coco_evaluate_equals_faster_coco_eval(seed):
    gt, dt = random_case(seed)
    if not dt:
        return
    ours = coco_evaluate(gt, dt)
    np.testing.assert_allclose([ours[key] for key in STAT_KEYS], faster_coco_eval_stats(gt, dt), rtol=0, atol=1e-9)


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
