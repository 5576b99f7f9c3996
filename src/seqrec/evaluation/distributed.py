"""The processes of a ``torch.distributed`` group, as evaluation and checkpoints see them.

Outside a process group (one process) this is rank 0 of 1 and gathering returns ``[obj]``, so
callers need no second code path. Inside one, every process must make the same calls in the same
order: a collective that one process skips blocks the others.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, number of processes) of the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process."""
    _, size = world()
    if size == 1:
        return [obj]
    gathered: list[Any] = [None] * size
    dist.all_gather_object(gathered, obj)
    return gathered
