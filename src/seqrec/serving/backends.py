"""Which recommender answers: PyTorch (``Recommender``) or onnxruntime (``OnnxRecommender``).

``auto`` takes the ONNX graph when the exported folder has one and onnxruntime is installed (no
torch import: a cold process starts several times faster, ``benchmarks/cold_recommend.py``), and
PyTorch otherwise; a run folder (``RUN/model``, no graph) always goes through PyTorch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from seqrec.errors import ModelFolderError
from seqrec.serving.folder import METADATA, ONNX
from seqrec.serving.queries import RawIdRecommender

Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")


def uses_onnx(path: str | Path, backend: Backend = "auto") -> bool:
    """Whether ``load_recommender(path, backend)`` answers with onnxruntime."""
    path = Path(path)
    if backend == "onnx":
        return True
    return (
        backend == "auto"
        and (path / METADATA).is_file()
        and (path / ONNX).is_file()
        and importlib.util.find_spec("onnxruntime") is not None
    )


def load_recommender(
    path: str | Path,
    backend: Backend = "auto",
    threads: int | None = None,
    run_folders: bool = True,
) -> RawIdRecommender:
    """The recommender of an exported folder (checksums verified) or, if ``run_folders``, of a
    run folder.

    ``threads`` sets the intra-op threads: onnxruntime's for this session, torch's for the
    process (torch has one pool per process).
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ModelFolderError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    exported = (path / METADATA).is_file()
    if uses_onnx(path, backend):
        if not exported:
            raise ModelFolderError(
                f"the ONNX back end needs an exported model folder; {path} is not one "
                "(write one with `seqrec export RUN OUT_DIR --onnx`)"
            )
        from seqrec.serving.onnx_recommender import OnnxRecommender

        return OnnxRecommender.load(path, threads=threads)
    import torch

    from seqrec.serving.recommender import Recommender

    if threads is not None:
        torch.set_num_threads(threads)
    if exported or not run_folders:
        return Recommender.load(path)  # a folder that is not exported: "metadata.json is missing"
    return Recommender.from_run(path)
