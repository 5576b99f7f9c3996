"""Measure RecBole 1.2.1 from the project's environment without importing it.

RecBole 1.2.1 needs numpy<2 and pandas<2.3, so it cannot share seqrec's environment. This module
builds a virtual environment of its own on first use (`.bench-venvs/recbole` by default, skipped
once its marker file records the same install steps) and runs `recbole_train.py` there in a
subprocess, which trains and evaluates one model and writes a JSON of measurements.

    from recbole_runner import run_recbole
    result = run_recbole("BERT4Rec", 2, "off", Path("data/ml-100k"), Path("out.json"))
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_VENV = BENCH_DIR.parent / ".bench-venvs" / "recbole"
TRAIN_SCRIPT = BENCH_DIR / "recbole_train.py"
MARKER_NAME = ".seqrec-bench-ready"
MODELS = ("BERT4Rec", "SASRec", "GRU4Rec", "GRU4RecF", "DIEN")
ANOMALY_MODES = ("off", "shipped")

TORCH_PIN = "torch==2.13.0"
# RecBole is installed without its declared dependencies: ray, hyperopt, thop, plotly, psutil and
# tabulate are only imported by quick_start and hyper-parameter tuning, which the runner does not
# use. tensorboard is needed because recbole.utils imports torch.utils.tensorboard at import time.
# torch is repeated in the last step so pip keeps the build installed first.
INSTALL_STEPS: tuple[tuple[str, ...], ...] = (
    (TORCH_PIN,),
    ("--no-deps", "recbole==1.2.1"),
    (
        TORCH_PIN,
        "numpy<2",
        "pandas<2.3",
        "setuptools<81",
        "scipy",
        "scikit-learn",
        "tqdm",
        "colorlog==4.7.2",
        "colorama==0.4.4",
        "pyyaml",
        "texttable",
        "tensorboard",
    ),
)
SMOKE_IMPORT = "import recbole.config, recbole.data, recbole.trainer, recbole.utils"


def venv_python(venv_dir: Path) -> Path:
    """The interpreter of a virtual environment made by `python -m venv` on Linux or macOS."""
    return venv_dir / "bin" / "python"


def ensure_recbole_venv(venv_dir: Path = DEFAULT_VENV) -> Path:
    """Create or complete the RecBole environment and return its interpreter.

    Does nothing when the marker file lists the current install steps; after a failed or changed
    install it reruns every step (pip skips what is already there).
    """
    python = venv_python(venv_dir)
    marker = venv_dir / MARKER_NAME
    wanted = json.dumps(INSTALL_STEPS)
    if python.exists() and marker.is_file() and marker.read_text() == wanted:
        return python
    if not python.exists():
        print(f"creating RecBole benchmark environment in {venv_dir}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    marker.unlink(missing_ok=True)
    for step in INSTALL_STEPS:
        subprocess.run([str(python), "-m", "pip", "install", *step], check=True)
    subprocess.run([str(python), "-c", SMOKE_IMPORT], check=True, env=_child_env(1))
    marker.write_text(wanted)
    return python


def _child_env(threads: int) -> dict[str, str]:
    """The parent's environment without anything that would leak the project's packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_recbole(
    model: str,
    epochs: int,
    anomaly: str,
    data_dir: Path,
    out_json: Path,
    threads: int = 2,
    *,
    seed: int = 2020,
    venv_dir: Path = DEFAULT_VENV,
    eval_repeats: int = 7,
    max_batches: int = 0,
) -> dict[str, Any]:
    """Train and test one RecBole model in its own environment; return the measurements.

    `data_dir` holds exactly one RecBole atomic `.inter` file (user_id, item_id, timestamp),
    and for GRU4RecF the `.item` file beside it.
    `anomaly` is "off" (autograd anomaly detection switched off after RecBole's models are
    imported) or "shipped" (left on, as importing RecBole 1.2.1's sequential models sets it).
    `max_batches` > 0 ends each training epoch after that many batches.
    The JSON written to `out_json` is described in `recbole_train.py`.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if anomaly not in ANOMALY_MODES:
        raise ValueError(f"anomaly must be one of {ANOMALY_MODES}, got {anomaly!r}")
    if epochs < 1 or threads < 1:
        raise ValueError(f"epochs and threads must be >= 1, got {epochs} and {threads}")
    python = ensure_recbole_venv(venv_dir)
    out_json = Path(out_json).resolve()
    options = {
        "--model": model,
        "--epochs": str(epochs),
        "--anomaly": anomaly,
        "--data-dir": str(Path(data_dir).resolve()),
        "--out": str(out_json),
        "--threads": str(threads),
        "--seed": str(seed),
        "--eval-repeats": str(eval_repeats),
        "--max-batches": str(max_batches),
    }
    command = [str(python), str(TRAIN_SCRIPT), *(part for item in options.items() for part in item)]
    subprocess.run(command, check=True, env=_child_env(threads))
    return json.loads(out_json.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one RecBole measurement in its own venv.")
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--anomaly", choices=ANOMALY_MODES, default="off")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()
    result = run_recbole(
        args.model,
        args.epochs,
        args.anomaly,
        args.data_dir,
        args.out,
        args.threads,
        seed=args.seed,
        venv_dir=args.venv,
    )
    print(json.dumps({"epochs": result["epochs"], "test": result["test"]}, indent=2))


if __name__ == "__main__":
    main()
