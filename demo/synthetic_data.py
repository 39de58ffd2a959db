"""Filling a project with synthetic street scenes through the normal ingestion path."""

import io
import random
from collections.abc import Callable, Sequence

from datasets.ingest import IncomingImage, image_ingest
from demo.models import SyntheticTruth
from demo.synthetic import GENERATOR_VERSION, HD_SIZE, condition_cycle, render_scene
from projects.models import Project

# Scenes rendered, then ingested together (decoded on the ingest threads, one thumbnail task).
GROUP = 16


def synthetic_images_add(
    *,
    project: Project,
    count: int,
    seed: int,
    size: tuple[int, int] = HD_SIZE,
    progress: Callable[[int, int], None] | None = None,
    conditions: Sequence[dict] | None = None,
) -> dict[str, int]:
    """Render `count` scenes for `seed` and ingest them as synthetic images with their truth.

    Conditions cycle through every combination of the vocabulary (in an order shuffled by
    `seed`), so every condition is well represented; `conditions` (a list to cycle through
    instead) plants a mix, say one condition rare. Scene i of a seed is always the same
    picture, so running again with the same seed adds only what is missing. `size`: width
    and height in pixels (small scenes make quick training tests).
    """
    combinations = list(conditions) if conditions else condition_cycle()
    random.Random(seed).shuffle(combinations)
    totals = {"stored": 0, "duplicate": 0, "refused": 0}
    for start in range(0, count, GROUP):
        indexes = range(start, min(start + GROUP, count))
        scenes, uploads = {}, []
        for index in indexes:
            scene_seed = seed * 1_000_003 + index
            scene = render_scene(seed=scene_seed, conditions=combinations[index % len(combinations)], size=size)
            buffer = io.BytesIO()
            scene.image.save(buffer, format="JPEG", quality=92)
            name = f"synthetic-{seed}-{index:05d}.jpg"
            scenes[name] = (scene_seed, scene)
            uploads.append(
                IncomingImage(name=name, file=buffer, size=buffer.getbuffer().nbytes, conditions=scene.conditions)
            )
        results = image_ingest(project=project, uploads=uploads, user=None, is_synthetic=True)
        truths = []
        for result in results:
            totals[result.status] += 1
            if result.status == "stored":
                scene_seed, scene = scenes[result.name]
                truths.append(
                    SyntheticTruth(
                        image_id=result.image_id,
                        generator=GENERATOR_VERSION,
                        seed=scene_seed,
                        boxes=scene.boxes.round(2).tolist(),
                        visible=scene.visible.round(3).tolist(),
                        ignore=scene.ignore.round(2).tolist(),
                    )
                )
        SyntheticTruth.objects.bulk_create(truths)
        if progress:
            progress(indexes[-1] + 1, count)
    return totals
