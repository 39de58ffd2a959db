"""config/allocator.py: a web process keeps image-sized memory between requests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Four threads take turns, as gunicorn's gthread worker hands out requests: each turn
# allocates and frees four 3 MiB arrays (a decoded image and a model input are about that
# size). After 12 turns of warm-up, prints the page faults of the next 40.
FAULTS = """
import resource
from concurrent.futures import ThreadPoolExecutor
import numpy as np
{setup}
def turn():
    arrays = [np.ones(3 << 20, np.uint8) for _ in range(4)]
    del arrays
pool = ThreadPoolExecutor(4)
for _ in range(12):
    pool.submit(turn).result()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    pool.submit(turn).result()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(setup: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", FAULTS.format(setup=setup)], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "allocator-test", "DJANGO_DEBUG": "1"},
    )  # fmt: skip
    return int(result.stdout.strip().splitlines()[-1])


def test_the_wsgi_process_keeps_freed_image_memory_for_the_next_request():
    untuned = page_faults("")
    tuned = page_faults("import config.wsgi")
    # glibc's defaults hand the memory back and fault it in again each turn:
    # 40 x 12 MiB is about 120,000 pages.
    assert untuned > 40_000
    assert tuned < 500
