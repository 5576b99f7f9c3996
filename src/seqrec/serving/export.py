"""The exported model folder (format 2): what ``seqrec export RUN OUT_DIR`` writes.

A run's ``model/`` folder (format 1, ``seqrec.training.export``) holds the weights, the config and
the item vocabulary. The exported folder adds ``metadata.json``::

    {"format": "seqrec-model", "format_version": 2, "seqrec_version": ..., "model": "bert4rec",
     "dataset": "beauty", "created": "2026-01-01T00:00:00Z", "n_items": ..., "max_len": ...,
     "buffers": [...], "test_metrics": {...}, "files": {"weights.safetensors": "<sha256>", ...}}

``files`` lists the sha256 of every other file of the folder; loading (``Recommender.load``)
checks the format version and every checksum before it reads anything else, then rebuilds the
model from ``config.json`` and reads the weights with safetensors: nothing is ever unpickled.
Tables a model keeps as registered buffers (popularity counts, item feature tables) are inside
``weights.safetensors``; ``buffers`` names them. ``test_metrics`` is the run's ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import save_model
from torch import nn

import seqrec
from seqrec.checksums import sha256_of
from seqrec.errors import ModelFolderError
from seqrec.serving.folder import CONFIG, FORMAT, FORMAT_VERSION, ITEMS, METADATA, ONNX, WEIGHTS


def _run_model(run_dir: Path) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """The model of a run folder (``RUN/model``), its raw item ids and ``{"name", "config"}``."""
    from seqrec.training.export import load_model_dir  # safetensors and JSON, no Lightning

    if not (run_dir / "model").is_dir():
        seeds = sorted(p.name for p in run_dir.glob("seed-*") if (p / "model").is_dir())
        if seeds:
            shown = ", ".join(str(run_dir / s) for s in seeds)
            raise ModelFolderError(f"{run_dir} holds one model per seed: export one of {shown}")
        raise FileNotFoundError(f"{run_dir} is not a run folder: model/ is missing")
    model, items, spec = load_model_dir(run_dir / "model")
    return model, [str(r) for r in items.raw.tolist()], spec


def _dataset_of(run_dir: Path) -> str | None:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data") or {}
    return data.get("dataset")


def _metrics_of(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_model_folder(
    folder: Path,
    model: nn.Module,
    name: str,
    item_ids: list[str],
    dataset: str | None = None,
    test_metrics: dict[str, Any] | None = None,
    onnx: bool = False,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write an exported folder for ``model``, rebuilt by ``build_model(name, **config)``.

    ``config`` defaults to ``dataclasses.asdict(model.config)``.

    The folder is written beside its destination and renamed into place, so a failed export
    leaves nothing behind; an existing non-empty ``folder`` is an error.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty: choose a new OUT_DIR")
    if len(item_ids) != model.n_items:
        raise ValueError(f"{len(item_ids)} item ids for a model of {model.n_items} items")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model = model.cpu().eval()
        save_model(model, str(tmp / WEIGHTS))  # handles tied weights
        spec = {"name": name, "config": asdict(model.config) if config is None else config}
        (tmp / CONFIG).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        (tmp / ITEMS).write_text(json.dumps(item_ids) + "\n", encoding="utf-8")
        if onnx:
            from seqrec.serving.onnx import export_onnx

            export_onnx(model, tmp / ONNX)
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "seqrec_version": seqrec.__version__,
            "model": name,
            "dataset": dataset,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "n_items": int(model.n_items),
            "max_len": int(model.max_len),
            "buffers": sorted(n for n, _ in model.named_buffers()),
            "test_metrics": test_metrics,
            "files": {p.name: sha256_of(p) for p in sorted(tmp.iterdir())},
        }
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        for part in tmp.iterdir():  # mkdtemp made the folder private; the files are to share
            part.chmod(0o644)
        tmp.chmod(0o755)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def export_run(run_dir: str | Path, out_dir: str | Path, onnx: bool = False) -> Path:
    """Export the model of a run folder to ``out_dir`` (see the module docstring)."""
    run_dir = Path(run_dir)
    model, item_ids, spec = _run_model(run_dir)
    return write_model_folder(
        Path(out_dir), model, spec["name"], item_ids,
        dataset=_dataset_of(run_dir), test_metrics=_metrics_of(run_dir), onnx=onnx,
        config=spec["config"],
    )  # fmt: skip
