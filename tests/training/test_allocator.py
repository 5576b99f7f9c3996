"""The allocator setting ``seqrec train`` applies on glibc systems."""

from __future__ import annotations

import ctypes
import sys

import pytest

from seqrec.training.allocator import keep_freed_memory


def _has_glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _has_glibc(), reason="needs glibc")
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
