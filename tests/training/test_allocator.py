"""The allocator settings ``seqrec train`` applies on glibc systems, and the periodic release."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest

from seqrec.config import TrainingConfig
from seqrec.training.allocator import keep_freed_memory, release_freed_memory
from seqrec.training.callbacks import ReleaseFreedMemory
from seqrec.training.fit import make_trainer


def _has_glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim")
    except OSError:
        return False


needs_glibc = pytest.mark.skipif(not _has_glibc(), reason="needs glibc")


def _resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@needs_glibc
def test_glibc_accepts_both_thresholds():
    assert keep_freed_memory() is True


@pytest.mark.parametrize("variable", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_a_threshold_set_in_the_environment_is_left_alone(
    variable: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(variable, "131072")
    calls = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name: calls.append(name))
    assert keep_freed_memory() is False
    assert calls == []  # glibc's settings were not touched


@needs_glibc
def test_freed_blocks_stay_resident_until_released():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    keep_freed_memory()  # 4 MiB blocks then come from the heap and stay there when freed
    blocks, pins = [], []
    for _ in range(64):  # 256 MiB, each block followed by a small live one: holes, not a top
        blocks.append(libc.malloc(4 << 20))
        ctypes.memset(blocks[-1], 1, 4 << 20)
        pins.append(libc.malloc(64))
    for block in blocks:
        libc.free(block)
    held = _resident_mib()
    release_freed_memory()
    released = held - _resident_mib()
    for pin in pins:
        libc.free(pin)
    assert released > 200, f"only {released:.0f} of 256 freed MiB left the process"


def test_the_release_runs_after_every_n_batches():
    calls = []
    callback = ReleaseFreedMemory(3, release=lambda: calls.append(1) or True)
    for _ in range(7):
        callback.on_train_batch_end(None)
    assert len(calls) == 2  # after batches 3 and 6


@pytest.mark.parametrize("every", [0, 25])
def test_every_trainer_releases_memory_as_configured(every: int, tmp_path):
    trainer = make_trainer(TrainingConfig(release_memory_every=every), tmp_path, [], 10)
    releases = [c.every for c in trainer.callbacks if isinstance(c, ReleaseFreedMemory)]
    assert releases == ([every] if every else [])
