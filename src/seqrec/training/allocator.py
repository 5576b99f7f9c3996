"""Keep freed memory inside the process on glibc between steps, and hand it back now and then.

glibc serves allocations above its mmap threshold (adjusted at run time, at most 32 MiB) with fresh
``mmap`` calls and hands the top of the heap back to the system above its trim threshold. A training
step frees and re-allocates the same large activations and logits every step, so each step pays
page faults on tens of megabytes, and how much depends on when other objects happen to be freed:
measured on SASRec (ml-100k, CPU) a step through Lightning cost up to 15% more than the same step in
a bare loop, and tuning both thresholds made the two equal and both about 15% faster
(``benchmarks/lightning_overhead.py``). ``seqrec train`` and ``seqrec evaluate`` call
``keep_freed_memory``; library code does not change process-wide settings on its own.

The price is fragmentation where block sizes change from step to step (BERT4Rec on Beauty: the
number of masked targets, so the logits, differ per batch): freed blocks in the middle of the heap
stay resident, and the peak grows by a few MiB a step, with glibc's defaults too
(``benchmarks/beauty_memory.py``). ``release_freed_memory`` (``malloc_trim``) returns every free
page to the system, so training calls it every ``training.release_memory_every`` batches: the
pages it returns are faulted in again when reused, a cost spread over those batches. A threshold set
in the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's own variables


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # another C library (e.g. musl)
        return None


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Raise glibc's trim and mmap thresholds to ``limit`` bytes; False where there is no glibc
    or the environment sets either threshold itself."""
    if any(os.environ.get(v) for v in USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(parameter, limit) for parameter in (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD))


def release_freed_memory() -> bool:
    """Return the free pages of every malloc arena to the system (glibc's ``malloc_trim(0)``);
    False where there is no glibc or there was nothing to return."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))
