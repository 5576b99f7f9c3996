"""The exported model folder's names and its check, with the standard library alone.

``seqrec.serving.export`` writes the folder (see its docstring for the format); this module
reads and verifies it, and imports neither torch nor polars, so that a recommender which does not
need PyTorch (``seqrec.serving.onnx_recommender``) starts in a fraction of a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqrec.checksums import sha256_of
from seqrec.errors import ModelFolderError

FORMAT = "seqrec-model"
FORMAT_VERSION = 2
WEIGHTS, CONFIG, ITEMS, METADATA = (
    "weights.safetensors",
    "config.json",
    "items.json",
    "metadata.json",
)
ONNX = "model.onnx"
REQUIRED = (WEIGHTS, CONFIG, ITEMS)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"{path}: not readable JSON ({error})") from error


def verify_folder(folder: Path) -> dict[str, Any]:
    """``metadata.json`` of an exported folder after checking its format and every checksum."""
    path = folder / METADATA
    if not path.is_file():
        raise ModelFolderError(
            f"{path} is missing: {folder} is not an exported model folder "
            f"(write one with `seqrec export RUN OUT_DIR`)"
        )
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: not a seqrec model folder (format is not {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: format_version {meta.get('format_version')!r}, this seqrec reads "
            f"{FORMAT_VERSION}"
        )
    files = meta.get("files")
    if not isinstance(files, dict) or not set(REQUIRED) <= set(files):
        raise ModelFolderError(f"{path}: 'files' must list the sha256 of {', '.join(REQUIRED)}")
    for name, expected in files.items():
        part = folder / name
        if Path(name).name != name or not part.is_file():
            raise ModelFolderError(f"{part}: listed in {METADATA} but missing")
        actual = sha256_of(part)
        if actual != expected:
            raise ModelFolderError(
                f"{part}: checksum mismatch (sha256 {actual}, {METADATA} says {expected}): "
                "the file changed after export"
            )
    return meta


def read_item_ids(folder: Path, n_items: int) -> list[str]:
    """The raw item ids of ``items.json``: ``n_items`` distinct ids, code ``i + 1`` at ``i``."""
    raw = read_json(folder / ITEMS)
    if not isinstance(raw, list) or len(raw) != n_items or len(set(map(str, raw))) != len(raw):
        raise ModelFolderError(
            f"{folder / ITEMS}: expected {n_items} distinct item ids for a model of {n_items} items"
        )
    return [str(r) for r in raw]
