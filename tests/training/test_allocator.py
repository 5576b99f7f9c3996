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
