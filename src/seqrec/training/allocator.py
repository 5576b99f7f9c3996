"""Keep freed memory inside the process on glibc, so large tensors are not re-mapped every step.

glibc serves allocations above its mmap threshold (adjusted at run time, at most 32 MiB) with fresh
``mmap`` calls and hands the top of the heap back to the system above its trim threshold. A training
step frees and re-allocates the same large activations and logits every step, so each step pays
page faults on tens of megabytes, and how much depends on when other objects happen to be freed:
measured on SASRec (ml-100k, CPU) a step through Lightning cost up to 15% more than the same step in
a bare loop, and tuning both thresholds made the two equal and both about 15% faster
(``benchmarks/lightning_overhead.py``). The price: the process keeps its peak memory until it exits,
which is what a training process does anyway, and on Beauty's BERT4Rec that peak grows by a few
MiB a step from heap fragmentation: glibc's ``MALLOC_MMAP_THRESHOLD_=131072`` keeps it flat at
2.1x the step time (``benchmarks/beauty_memory.py``), so a threshold set in the environment is
left alone. ``seqrec train`` and ``seqrec evaluate`` call this; library code does not change
process-wide settings on its own.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's own variables


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Raise glibc's trim and mmap thresholds to ``limit`` bytes; False where there is no glibc
    or the environment sets either threshold itself."""
    if not sys.platform.startswith("linux") or any(os.environ.get(v) for v in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (e.g. musl)
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, limit)) and bool(mallopt(M_MMAP_THRESHOLD, limit))
