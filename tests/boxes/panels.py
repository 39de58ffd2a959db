"""Simulated projects for the boxes tests: random scenes and a panel of habit profiles."""

import numpy as np

from boxes.simulate import PROFILES, simulate_annotator

WIDTH, HEIGHT = 1280, 720


def simulated_project(names: list[str], *, count: int, seed: int) -> tuple[list[np.ndarray], list[dict]]:
    """`count` scenes of 1 to 8 pedestrians (30 to 300 px tall) and, for each, the boxes
    every profile in `names` draws: (true boxes per image, annotations per image)."""
    rng = np.random.default_rng(seed)
    truths, images = [], []
    for _ in range(count):
        n = int(rng.integers(1, 9))
        heights = np.exp(rng.uniform(np.log(30), np.log(300), n))
        x, y = rng.uniform(0, WIDTH - heights * 0.4), rng.uniform(0, HEIGHT - heights)
        truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
        truths.append(truth)
        images.append(
            {
                name: simulate_annotator(truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT).boxes
                for name in names
            }
        )
    return truths, images
