"""`simulate_panel`: simulated annotators fill about 70% of the slots through the real services."""

from collections import Counter

import numpy as np
import pytest
from django.core.management import call_command

from annotation.models import Assignment
from boxes.geometry import iou_matrix
from demo.models import SyntheticTruth
from demo.synthetic_data import synthetic_images_add
from groundtruth.models import Annotation
from projects.models import Project

pytestmark = pytest.mark.django_db


def test_simulated_panel_respects_overlap_and_draws_near_the_truth(capsys):
    project = Project.objects.create(name="Sim")
    synthetic_images_add(project=project, count=12, seed=5)

    call_command("simulate_panel", "Sim", "--annotators", "5", "--fraction", "0.7")

    out = capsys.readouterr().out
    annotations = Annotation.objects.filter(image__project=project)
    assert annotations.count() == int(12 * 3 * 0.7) == 25
    assert "submitted 25 of 25 slots; 0 skipped" in out
    assert set(annotations.values_list("source", flat=True)) == {"simulated"}
    per_image = Counter(annotations.values_list("image_id", flat=True))
    assert max(per_image.values()) <= 3
    pairs = list(annotations.values_list("image_id", "annotator_id"))
    assert len(pairs) == len(set(pairs))
    # every submission went through a draft first
    assert not Assignment.objects.filter(image__project=project, state="submitted", version__lt=2).exists()
    # the careful annotator's boxes sit on the true boxes
    careful = annotations.filter(annotator__username="sim-01-careful")
    ious = []
    for annotation in careful:
        truth = np.array(SyntheticTruth.objects.get(image=annotation.image).boxes).reshape(-1, 4)
        drawn = np.array([[b.x1, b.y1, b.x2, b.y2] for b in annotation.boxes.all()]).reshape(-1, 4)
        if len(truth) and len(drawn):
            ious += list(iou_matrix(drawn, truth).max(axis=1))
    assert np.median(ious) > 0.8
