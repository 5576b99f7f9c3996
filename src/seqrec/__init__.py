"""seqrec: sequential recommendation in PyTorch with evaluation you can trust.

The Python API (``train``, ``resume``, ``evaluate``, ``recommend``, ``load_run``, ``Run``) is
imported on first use, so ``import seqrec`` stays light (no torch until it is needed).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "evaluate", "load_run", "recommend", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from seqrec import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'seqrec' has no attribute {name!r}")
