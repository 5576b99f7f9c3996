"""Data-parallel training on two CPU processes (gloo), started as a user starts them.

``seqrec train ... training.devices=2`` (Lightning's launcher runs the command again) and torchrun
each train a small SASRec on synthetic data. Every window has the same number of targets and
dropout is off in the comparison run, so two processes with batch b see the windows one process
with batch 2b sees, step by step, and average gradients alike: the loss curves agree to float
rounding (summation order: one mean of 2b against the mean of two means of b, and the gradient
all-reduce), 1e-5 relative. Evaluation is exact: the same weights give one process's metrics to
the last digit.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny_run import write_interactions

from seqrec.pipeline import evaluate, train

pytestmark = pytest.mark.ddp
ENTRY = Path(__file__).with_name("ddp_entry.py")
PER_PROCESS_BATCH = 4
PROTOCOL = "uniform10"


def _config(data: Path, **training: object) -> dict:
    """32 users of 12 items: every training window holds max_len + 1 = 9 items (9 targets)."""
    return {
        "data": {"dataset": str(data)},
        "model": {
            "name": "sasrec", "max_len": 8, "hidden_size": 16, "n_layers": 1, "n_heads": 1,
            "hidden_dropout": 0.0, "attn_dropout": 0.0, "loss": "ce",
        },
        "training": {
            "epochs": 3, "batch_size": PER_PROCESS_BATCH, "lr": 0.01, "progress_bar": False,
        } | training,
        # 7 chunks of at most 5 users: the two processes score 4 and 3 of them
        "evaluation": {"protocols": [PROTOCOL], "metrics": ["NDCG@10", "HR@10", "AUC"],
                       "batch_size": 5},
    }  # fmt: skip


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env=os.environ | env,
    )  # fmt: skip
    return done


def _launch(cwd: Path, config: dict, *overrides: str) -> subprocess.CompletedProcess:
    """``seqrec train CONFIG training.devices=2 training.strategy=ddp`` in ``cwd``."""
    (cwd / "config.yaml").write_text(yaml.safe_dump(config))
    args = ["-m", "seqrec.cli", "train", "config.yaml", "training.devices=2", *overrides]
    done = _run([*args, "training.strategy=ddp"], cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the run folder, stdout) of a two-process run under a default run name."""
    cwd = tmp_path_factory.mktemp("ddp")
    data = write_interactions(cwd / "tiny.tsv", n_users=32, n_items=40, length=12)
    done = _launch(cwd, _config(data))
    (run_dir,) = (cwd / "runs").iterdir()  # one folder, although two processes named one
    return run_dir, done.stdout


def test_two_processes_of_batch_b_follow_one_process_of_batch_2b(two_processes, tmp_path):
    run_dir, _ = two_processes
    data = Path(yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["dataset"])
    single = _config(data, batch_size=2 * PER_PROCESS_BATCH) | {"output": {"dir": str(tmp_path)}}
    one = train(single).fit.history
    two = _history(run_dir)
    assert len(two) == len(one) == 3
    for row_two, row_one in zip(two, one, strict=True):
        assert float(row_two["train_loss"]) == pytest.approx(row_one["train_loss"], rel=1e-5)
        # the same ranks: one rank more or less among 32 users moves NDCG by more than 1e-3
        assert float(row_two["valid_NDCG@10"]) == pytest.approx(row_one["valid_NDCG@10"], abs=1e-9)


def test_test_metrics_of_two_processes_are_one_process_metrics_to_the_last_digit(two_processes):
    run_dir, _ = two_processes
    saved = json.loads((run_dir / "metrics.json").read_text())[PROTOCOL]
    assert saved["n_users"] == 32
    single = json.loads(json.dumps(evaluate(run_dir, PROTOCOL).to_dict()))  # one process
    assert single == saved


def test_only_rank_zero_writes_and_prints(two_processes):
    run_dir, stdout = two_processes
    assert [row["epoch"] for row in _history(run_dir)] == ["1", "2", "3"]
    assert sorted(p.name for p in (run_dir / "logs").iterdir()) == ["csv"]
    for line in ("epoch 1/3", "epoch 3/3", f"protocol: {PROTOCOL}, users: 32", "report: "):
        assert stdout.count(line) == 1, (line, stdout)


def _last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def test_a_torchrun_run_resumed_ends_on_the_uninterrupted_weights(two_processes, tmp_path):
    """Started by torchrun, stopped after epoch 2 of 3, resumed by ``seqrec train --resume``."""
    whole_dir, _ = two_processes
    data = write_interactions(tmp_path / "tiny.tsv", n_users=32, n_items=40, length=12)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_config(data, devices=2, strategy="ddp")))
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    crashed = _run([*torchrun, str(ENTRY), "train", "config.yaml"], tmp_path, CRASH_AFTER_EPOCH="2")
    assert "simulated crash after epoch 2" in crashed.stderr
    (cut_dir,) = (tmp_path / "runs").iterdir()  # named after torchrun's run id, alike on both
    assert cut_dir.name.startswith("sasrec-tiny-torchrun-")
    assert len(_history(cut_dir)) == 2
    resumed = _run(["-m", "seqrec.cli", "train", "--resume", str(cut_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    losses = [[r["train_loss"] for r in _history(d)] for d in (whole_dir, cut_dir)]
    assert losses[0] == losses[1]
    expected, actual = _last_checkpoint(whole_dir), _last_checkpoint(cut_dir)
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(tensor, actual["state_dict"][name]), name
    # each process continued its own random states (its own seed: they differ between ranks)
    ranks = [c["seqrec_rng"]["ranks"] for c in (expected, actual)]
    assert not torch.equal(ranks[0][0]["torch"], ranks[0][1]["torch"])
    for rank in (0, 1):
        for key in ("torch", "generator"):
            assert torch.equal(ranks[0][rank][key], ranks[1][rank][key]), (rank, key)
