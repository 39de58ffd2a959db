"""A simulated panel: annotators with the habits of `boxes.simulate` working through the
real services (lease, draft, submit) on synthetic images, whose true boxes are known."""

import math
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.assignments import assignment_draft_save, assignment_lease_next, assignment_skip, assignment_submit
from boxes.simulate import PROFILES, simulate_annotator
from demo.models import SyntheticTruth
from groundtruth.models import AnnotationSource
from projects.models import Membership, Project, Role


@dataclass(frozen=True)
class PanelRun:
    annotators: list[str]
    submitted: int
    skipped: int
    target: int


def simulated_annotators(*, project: Project, count: int) -> list:
    """`count` simulated annotators, members of `project`, each with a habit profile, named
    after it ("sim-03-shifted"). Made once; they cannot sign in."""
    User = get_user_model()
    profiles = list(PROFILES)
    users = []
    with transaction.atomic():
        for index in range(count):
            name = f"sim-{index + 1:02d}-{profiles[index % len(profiles)]}"
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.ANNOTATOR})
            users.append(user)
    return users


def panel_simulate(*, project: Project, annotators: int, fraction: float = 0.7, seed: int = 0) -> PanelRun:
    """Have `annotators` simulated people annotate until `fraction` of the project's
    k x images slots are submitted (or no task is left), taking turns.

    Each lease is drafted once, then submitted with the annotator's simulated boxes of the
    image's true boxes. Images without a known truth are skipped with that reason.
    """
    users = simulated_annotators(project=project, count=annotators)
    profiles = list(PROFILES.values())
    rng = np.random.default_rng(seed)
    target = math.floor(project.images.count() * project.overlap_k * fraction)
    submitted = skipped = 0
    active = list(range(len(users)))
    while active and submitted < target:
        for index in list(active):
            if submitted >= target:
                break
            user, profile = users[index], profiles[index % len(profiles)]
            assignment = assignment_lease_next(project=project, user=user)
            if assignment is None:
                active.remove(index)
                continue
            truth = SyntheticTruth.objects.filter(image_id=assignment.image_id).first()
            if truth is None:
                assignment_skip(assignment=assignment, reason="simulated annotator: no known truth for this image")
                skipped += 1
                continue
            image = assignment.image
            simulated = simulate_annotator(
                np.array(truth.boxes, dtype=float).reshape(-1, 4),
                profile=profile,
                rng=rng,
                width=image.width,
                height=image.height,
                occluded=np.array(truth.visible, dtype=float) < 0.8,
            )
            boxes = [
                {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": project.labels[0]}
                for x1, y1, x2, y2 in simulated.boxes.round(2).tolist()
            ]
            assignment = assignment_draft_save(
                assignment=assignment, boxes=boxes[: len(boxes) // 2], expected_version=assignment.version
            )
            assignment_submit(
                assignment=assignment, boxes=boxes, active_seconds=simulated.seconds, source=AnnotationSource.SIMULATED
            )
            submitted += 1
    return PanelRun(annotators=[u.get_username() for u in users], submitted=submitted, skipped=skipped, target=target)
