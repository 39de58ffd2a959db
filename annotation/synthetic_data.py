"""Filling a project with synthetic street scenes through the normal ingestion path."""

import io
import random
from collections.abc import Callable

from annotation.ingest import IncomingImage, image_ingest_one
from annotation.models import Image, Project, SyntheticTruth
from annotation.synthetic import GENERATOR_VERSION, condition_cycle, render_scene


def synthetic_images_add(
    *, project: Project, count: int, seed: int, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Render `count` scenes for `seed` and ingest them as synthetic images with their truth.

    Conditions cycle through every combination of the vocabulary (in an order shuffled by
    `seed`), so every condition is well represented. Scene i of a seed is always the same
    picture, so running again with the same seed adds only what is missing.
    """
    combinations = condition_cycle()
    random.Random(seed).shuffle(combinations)
    totals = {"stored": 0, "duplicate": 0, "refused": 0}
    for index in range(count):
        scene_seed = seed * 1_000_003 + index
        scene = render_scene(seed=scene_seed, conditions=combinations[index % len(combinations)])
        buffer = io.BytesIO()
        scene.image.save(buffer, format="JPEG", quality=92)
        upload = IncomingImage(
            name=f"synthetic-{seed}-{index:05d}.jpg",
            file=buffer,
            size=buffer.getbuffer().nbytes,
            conditions=scene.conditions,
        )
        result = image_ingest_one(project=project, upload=upload, user=None, is_synthetic=True)
        totals[result.status] += 1
        if result.status == "stored":
            SyntheticTruth.objects.create(
                image=Image.objects.get(pk=result.image_id),
                generator=GENERATOR_VERSION,
                seed=scene_seed,
                boxes=scene.boxes.round(2).tolist(),
                visible=scene.visible.round(3).tolist(),
                ignore=scene.ignore.round(2).tolist(),
            )
        if progress:
            progress(index + 1, count)
    return totals
