"""Quorum's evaluation of a model: the COCO figures it reports agree with ultralytics' own
metric code on identical detections; detections equal to the ground truth score perfectly,
no detections score nothing and are flagged worse than the humans."""

import numpy as np
import pytest
import torch
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils.metrics import ap_per_class, box_iou

from boxes.metrics import ImageTruth
from training.evaluation import coco_figures, ground_truth, model_evaluate, split_images
from training.selectors import marginal_gain


def random_case(seed: int) -> tuple[list[ImageTruth], list[np.ndarray]]:
    """Images of 0-7 pedestrians and detections near them (jittered, some duplicated) plus
    three random false alarms each, with random scores."""
    rng = np.random.default_rng(seed)
    truths, detections = [], []
    for _ in range(int(rng.integers(5, 30))):
        n = int(rng.integers(0, 8))
        corner = rng.uniform(0, 400, (n, 2))
        truth = np.hstack([corner, corner + rng.uniform(10, 120, (n, 2))])
        near = truth[rng.integers(0, max(n, 1), int(rng.integers(0, 12)))] if n else np.zeros((0, 4))
        near = near + rng.normal(0, rng.uniform(1, 15), near.shape)
        far_corner = rng.uniform(0, 400, (3, 2))
        boxes = np.vstack([near, np.hstack([far_corner, far_corner + rng.uniform(10, 100, (3, 2))])])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        truths.append(ImageTruth(boxes=truth, ignore=np.zeros(n, dtype=bool)))
        detections.append(np.hstack([boxes, rng.uniform(0, 1, (len(boxes), 1))]))
    return truths, detections


def ultralytics_ap(truths, detections) -> tuple[float, float]:
    """AP50 and AP50:95 as ultralytics' DetectionValidator computes them (its matching, its ap_per_class)."""
    validator = DetectionValidator()
    validator.iouv = torch.linspace(0.5, 0.95, 10)
    correct, scores, targets = [], [], 0
    for truth, rows in zip(truths, detections, strict=True):
        rows = rows[np.argsort(-rows[:, 4], kind="stable")]
        iou = box_iou(torch.tensor(truth.boxes, dtype=torch.float32), torch.tensor(rows[:, :4], dtype=torch.float32))
        correct.append(validator.match_predictions(torch.zeros(len(rows)), torch.zeros(len(truth.boxes)), iou).numpy())
        scores.append(rows[:, 4])
        targets += len(truth.boxes)
    scores = np.concatenate(scores)
    ap = ap_per_class(np.concatenate(correct), scores, np.zeros(len(scores)), np.zeros(targets))[5]
    return float(ap[0, 0]), float(ap[0].mean())


@pytest.mark.parametrize("seed", range(30))
def test_quorum_and_ultralytics_agree_on_the_same_detections(seed):
    truths, detections = random_case(seed)
    ours = coco_figures(truths, detections)
    ap50, ap = ultralytics_ap(truths, detections)
    # Both match detections greedily by score at each IoU threshold and sample precision
    # at 101 recall points; they differ only in how they integrate: COCO averages the
    # precision envelope sampled at each recall point, ultralytics integrates the linearly
    # interpolated envelope by the trapezoid rule. On these cases that moves AP by up to
    # about 0.012 (0.002 on average); a real difference in matching moves it by far more.
    assert ours["ap50"] == pytest.approx(ap50, abs=0.02)
    assert ours["ap"] == pytest.approx(ap, abs=0.02)


def test_detections_equal_to_the_ground_truth_score_perfectly(trainable):
    val = split_images(version=trainable.version, split="val")
    truths = ground_truth(version=trainable.version, image_ids=val)
    perfect = [np.hstack([t.boxes[~t.ignore], np.ones((int((~t.ignore).sum()), 1))]) for t in truths]
    result = model_evaluate(version=trainable.version, image_ids=val, detections=perfect, bootstrap=50)
    assert result["images"] == len(val) and result["pedestrians"] == sum(len(p) for p in perfect) > 0
    assert result["coco"]["ap50"] == pytest.approx(1.0) and result["mr2_all"] == pytest.approx(0.0, abs=1e-9)
    assert all(row["model_recall"] in (1.0, None) for row in result["by_height"])
    assert not [f for f in result["flags"] if f["code"] == "worse_than_human"]


def test_no_detections_score_nothing_and_are_flagged_worse_than_human(trainable):
    val = split_images(version=trainable.version, split="val")
    nothing = [np.zeros((0, 5)) for _ in val]
    result = model_evaluate(version=trainable.version, image_ids=val, detections=nothing, train_ap50=0.9, bootstrap=50)
    assert result["coco"]["ap50"] == 0.0 and result["mr2_all"] == pytest.approx(1.0)
    codes = {flag["code"] for flag in result["flags"]}
    assert {"worse_than_human", "overfitting"} <= codes
    assert result["human"]["gap"]["recall_gap"] == pytest.approx(-result["human"]["human_mean"]["recall"])


def test_a_condition_without_val_images_is_flagged(trainable):
    image = trainable.project.images.filter(split="train").first()
    image.conditions = {**image.conditions, "weather": "snow"}
    image.save(update_fields=["conditions"])
    val = split_images(version=trainable.version, split="val")
    nothing = [np.zeros((0, 5))] * len(val)
    result = model_evaluate(version=trainable.version, image_ids=val, detections=nothing, bootstrap=10)
    assert any(f["code"] == "condition_without_val" and "weather=snow" in f["message"] for f in result["flags"])


def test_marginal_gain_is_the_slope_of_ap50_over_the_last_quarter_in_hours():
    # 12 epochs, 6 minutes each; AP50 rises by 0.02 an epoch, then by 0.005 over the last 3
    history = [
        {"epoch": e, "elapsed": 360.0 * e, "map50": 0.02 * min(e, 9) + 0.005 * max(0, e - 9)} for e in range(1, 13)
    ]
    gain = marginal_gain(history)
    assert gain["epochs"] == 3 and gain["per_hour"] == pytest.approx(0.005 * 10)  # 10 epochs an hour
    assert gain["to_hours"] == pytest.approx(1.2)
    assert marginal_gain(history[:2]) is None
