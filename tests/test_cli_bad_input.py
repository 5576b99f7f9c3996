"""Bad input through the command line: exit status 2, one line naming the culprit, nothing left.

One row per kind of failure a user met before (silent changes, tracebacks, late or misleading
errors, usability). Each runs ``seqrec`` in a fresh folder and checks that it exits with 2,
prints exactly one line on stderr that names the file or key, shows no traceback, and leaves no
run folder behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqrec.cli import main
from seqrec.data.corpus import Vocabulary
from seqrec.models import build_model
from seqrec.training.export import save_model_dir

MODEL = {"name": "sasrec", "max_len": 5, "hidden_size": 8, "n_heads": 1, "n_layers": 1,
         "inner_size": 8}  # fmt: skip
N_ITEMS = 15


def _csv(path: Path, rows: list[str] | None = None) -> Path:
    if rows is None:
        rng = np.random.default_rng(0)
        rows = [f"u{u},i{rng.integers(N_ITEMS)},{t}" for u in range(20) for t in range(8)]
    path.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    return path


def _config(root: Path, name: str = "c.yaml", data: str = "data.csv", **sections: dict) -> Path:
    raw = {
        "data": {"dataset": data},
        "model": MODEL,
        "training": {"epochs": 1, "batch_size": 8, "progress_bar": False},
        "evaluation": {"protocols": ["full"], "metrics": ["NDCG@10"]},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = root / name
    path.write_text(yaml.safe_dump(raw))
    return path


def _model_folder(root: Path) -> Path:
    """A run folder with a saved (untrained) model, as training leaves it."""
    run = root / "run"
    config = {**{k: v for k, v in MODEL.items() if k != "name"}, "n_items": N_ITEMS}
    model = build_model("sasrec", **config)
    items = Vocabulary(np.array([f"i{i}" for i in range(N_ITEMS)]), offset=1)
    save_model_dir(run / "model", model, "sasrec", config, items)
    (run / "config.yaml").write_text(_config(root, "run.yaml").read_text())
    return run


def _edit_json(path: Path, change: Callable) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


# each case: (id, set-up(root) -> argv, text the one line must contain)
def _train_with(**sections):
    def setup(root: Path) -> list[str]:
        _csv(root / "data.csv")
        return ["train", str(_config(root, **sections))]

    return setup


def _train_yaml(text: str):
    def setup(root: Path) -> list[str]:
        _csv(root / "data.csv")
        (root / "c.yaml").write_text(text)
        return ["train", "c.yaml"]

    return setup


def _data_file(name: str, content: bytes, *flags: str):
    def setup(root: Path) -> list[str]:
        (root / name).write_bytes(content)
        return ["data", "stats", name, *flags]

    return setup


def _run_file(part: str, change: Callable[[Path], None], command: str = "recommend"):
    def setup(root: Path) -> list[str]:
        run = _model_folder(root)
        change(run / part)
        if command == "recommend":
            return ["recommend", str(run), "--history", "i1", "i2"]
        _csv(root / "data.csv")
        protocol = command.partition("-")[2]
        return ["evaluate", str(run), *(["--protocol", protocol] if protocol else [])]

    return setup


def _truncate(keep: int) -> Callable[[Path], None]:
    """Keep the first ``keep`` bytes (negative: drop the last ``-keep``)."""
    return lambda path: path.write_bytes(path.read_bytes()[:keep])


CASES = [
    # silent changes: now errors naming the line
    (
        "nan-timestamp",
        _data_file("d.csv", b"user_id,item_id,timestamp\nu,a,1\nu,b,nan\n"),
        "d.csv: line 3: field 'timestamp' is 'nan'",
    ),
    (
        "inf-timestamp",
        _data_file("d.tsv", b"user_id\titem_id\ttimestamp\nu\ta\tinf\n"),
        "d.tsv: line 2: field 'timestamp' is 'inf'",
    ),
    (
        "header-in-txt",
        _data_file("d.txt", b"user_id item_id\n1 2\n1 3\n"),
        "d.txt: line 1: 'user_id item_id' looks like a header",
    ),
    (
        "nul-in-id",
        _data_file("d.csv", b"user_id,item_id,timestamp\nu\x001,a,1\n"),
        "d.csv: line 2: field 'user_id'",
    ),
    (
        "duplicates-error",
        _data_file("d.csv", b"user_id,item_id,timestamp\nu,a,1\nu,a,1\n", "--duplicates", "error"),
        "data row 2",
    ),
    (
        "items-json-duplicate",
        _run_file("model/items.json", lambda p: _edit_json(p, lambda ids: [ids[0], *ids[:-1]])),
        "items.json: item id 'i0' appears twice",
    ),
    (
        "items-json-short",
        _run_file("model/items.json", lambda p: _edit_json(p, lambda i: i[:-3])),
        "items.json: 12 item ids, but the model has 15 items",
    ),
    (
        "items-json-truncated",
        _run_file("model/items.json", _truncate(20)),
        "items.json: not valid JSON",
    ),
    ("negative-warmup", _train_with(training={"warmup_steps": -5}), "training.warmup_steps"),
    ("negative-clip", _train_with(training={"clip_grad_norm": -1.0}), "training.clip_grad_norm"),
    # tracebacks before: now one line
    ("empty-txt", _data_file("d.txt", b""), "d.txt: the file is empty"),
    ("not-parquet", _data_file("d.parquet", b"user_id,item_id\n1,2\n"), "d.parquet: not a Parquet"),
    (
        "corrupt-weights",
        _run_file("model/weights.safetensors", lambda p: p.write_bytes(b"x" * 64)),
        "weights.safetensors: not a valid safetensors file",
    ),
    (
        "truncated-weights",
        _run_file("model/weights.safetensors", _truncate(-10)),
        "weights.safetensors: not a valid safetensors file",
    ),
    (
        "weights-do-not-fit-config",
        _run_file(
            "model/config.json",
            lambda p: _edit_json(p, lambda c: {**c, "config": {**c["config"], "n_items": 20}}),
        ),
        "but config.json gives a model whose",
    ),
    ("accelerator-tpu", _train_with(training={"accelerator": "tpu"}), "training.accelerator"),
    (
        "accelerator-absent",
        _train_with(training={"accelerator": "cuda"}),
        "training.accelerator: 'cuda' is not available on this machine",
    ),
    ("model-value", _train_with(model={"n_heads": 0}), "model.n_heads"),
    ("model-value-from-model", _train_with(model={"hidden_dropout": 1.5}), "model.hidden_dropout"),
    # late or misleading errors: now before anything is written, naming the file and key
    ("eval-batch-zero", _train_with(evaluation={"batch_size": 0}), "evaluation.batch_size"),
    ("negative-lr", _train_with(training={"lr": -1e-3}), "c.yaml: training.lr"),
    (
        "invalid-model-config-json",
        _run_file("model/config.json", _truncate(10)),
        "model/config.json: not valid JSON",
    ),
    (
        "model-folder-missing",
        _run_file("model/weights.safetensors", lambda p: p.unlink(), command="evaluate"),
        "weights.safetensors is missing",
    ),
    (
        "unknown-protocol-in-config",
        _train_with(evaluation={"protocols": ["top10"]}),
        "evaluation.protocols: unknown protocol 'top10'",
    ),
    ("too-many-negatives", _train_with(evaluation={"protocols": ["uniform100"]}), "uniform100"),
    (
        "yaml-key-twice",
        _train_yaml(
            "data: {dataset: data.csv}\nmodel: {name: sasrec}\ntraining:\n  lr: 1\n  lr: 2\n"
        ),
        "c.yaml: not valid YAML: line 5, column 3: key 'lr' appears twice (first on line 4)",
    ),
    (
        "data-not-found",
        lambda root: ["train", str(_config(root, data="nowhere.csv"))],
        "data.dataset: 'nowhere.csv' is neither",
    ),
    (
        "bad-row-in-data",
        lambda root: (
            ["train", str(_config(root, data="bad.csv"))]
            if _csv(root / "bad.csv", ["u,a,1", "u,b"])
            else []
        ),
        "bad.csv: line 3: 2 fields, expected 3",
    ),
    (
        "nothing-to-train",
        lambda root: (
            ["train", str(_config(root, data="one.csv"))]
            if _csv(root / "one.csv", ["u,a,1", "v,b,2"])
            else []
        ),
        "nothing to train on",
    ),
    (
        "header-column-twice",
        _data_file("d.csv", b"user_id,user_id,item_id\n1,2,3\n"),
        "d.csv: line 1: column 'user_id' appears more than once",
    ),
    (
        "bad-protocol-flag",
        _run_file("config.yaml", lambda p: None, command="evaluate-uniform0"),
        "protocol 'uniform0': n_negatives must be positive",
    ),
    # usability: data flags, wrong names
    (
        "missing-column-flag",
        _data_file("d.csv", b"a,b,c\n1,2,3\n", "--user-col", "uid"),
        "d.csv: header: no column 'uid' for user (columns: a, b, c)",
    ),
    ("no-format-from-suffix", _data_file("d.dat", b"1 2\n"), "cannot tell the format"),
    ("bad-format-flag", _data_file("d.csv", b"a\n", "--format", "xls"), "--format"),
    ("bad-k", lambda root: ["recommend", "run", "--history", "1", "-k", "ten"], "-k"),
]


@pytest.mark.parametrize(("setup", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(setup, expected, tmp_path, monkeypatch,
                                                         capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("seqrec: error: "), err
    assert expected in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing new
