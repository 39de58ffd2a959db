"""Fixtures shared by the groundtruth tests."""

import pytest

from datasets.models import Image
from groundtruth.computing import consensus_version_compute
from groundtruth.models import Annotation, Box
from groundtruth.services import consensus_version_create
from tests.factories import ImageFactory, MembershipFactory

PERSON = (100.0, 100.0, 140.0, 200.0)


@pytest.fixture
def project_with_disagreement(people):
    """Three annotators on 4 images: the first three agree, the last one is split 2 to 1
    on one pedestrian and boxed by one annotator elsewhere."""
    annotators = [people.annotator] + [
        MembershipFactory(project=people.project, user__username=f"ann{i}").user for i in range(2)
    ]
    images = [ImageFactory(project=people.project) for _ in range(4)]
    for index, image in enumerate(images):
        for position, annotator in enumerate(annotators):
            annotation = Annotation.objects.create(image=image, annotator=annotator)
            boxes = [PERSON]
            if index == 3 and position == 0:
                boxes = [(400.0, 100.0, 440.0, 200.0)]  # disagrees: boxes someone else
            for x1, y1, x2, y2 in boxes:
                Box.objects.create(annotation=annotation, x1=x1, y1=y1, x2=x2, y2=y2)
    Image.objects.filter(project=people.project).update(submitted_count=3)
    version = consensus_version_create(project=people.project, user=people.reviewer)
    consensus_version_compute(version_id=version.pk)
    return images, version
