"""glibc's memory allocator, tuned for processes that decode and score images in threads.

Each prediction allocates a few arrays of some megabytes (the decoded image, the model's
input). By default glibc gives a gunicorn thread its own arena, returns memory to the
kernel once the free top passes the trim threshold (twice the largest block freed so far),
and unmaps a thread arena's extra heap as soon as it is empty: so the next request faults
fresh pages in again. Measured in `bench/serving.py`'s server: building a 640 px model
input took 2.4-3.7 ms (with some thousand page faults) against 0.9 ms in a plain loop.
One arena, the largest mmap threshold glibc accepts and a trim threshold above it keep
that memory in the process for the next request (0 faults, 0.9 ms). Python holds the GIL
for most allocations anyway, so one arena costs little. Elsewhere than glibc this does
nothing.
"""

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 32 << 20  # the largest glibc accepts on 64-bit machines
TRIM_THRESHOLD_BYTES = 256 << 20


def allocator_tune() -> bool:
    """One arena for every thread, blocks up to 32 MiB from it, and up to 256 MiB of free
    top kept; True when glibc took all three. Call it before the threads start."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    results = [
        mallopt(M_ARENA_MAX, 1),
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    ]
    return results == [1, 1, 1]
