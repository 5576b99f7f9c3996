"""Serving: export a trained model, recommend for any history, and an HTTP service.

``seqrec.serving.Recommender.load(dir)`` reads a folder written by ``seqrec export RUN OUT_DIR``
(checksums verified, nothing unpickled); ``seqrec.serving.app`` is the FastAPI service behind
``seqrec serve``. Names are imported on first use, so importing a submodule stays light.
"""

from typing import Any

_NAMES = {
    "Recommender": "seqrec.serving.recommender",
    "OnnxRecommender": "seqrec.serving.onnx_recommender",
    "Recommendation": "seqrec.serving.queries",
    "UnknownItemError": "seqrec.serving.queries",
    "ModelFolderError": "seqrec.errors",
    "export_run": "seqrec.serving.export",
    "write_model_folder": "seqrec.serving.export",
    "OnnxExportError": "seqrec.serving.onnx",
    "create_app": "seqrec.serving.app",
    "ServeSettings": "seqrec.serving.app",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'seqrec.serving' has no attribute {name!r}")
