"""The exported model folder: what it holds, that loading verifies it, and the ONNX graph."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from serving_models import CASE_IDS, CASES, MAX_LEN, N_ITEMS, item_ids, small_model

from seqrec.checksums import sha256_of
from seqrec.cli import main
from seqrec.errors import ModelFolderError
from seqrec.serving.export import export_run, write_model_folder
from seqrec.serving.folder import FORMAT_VERSION
from seqrec.serving.onnx import ATOL, OnnxExportError, ScoringGraph, example_inputs, export_onnx
from seqrec.serving.recommender import Recommender
from seqrec.training.export import save_model_dir

RAW = item_ids()
METRICS = {"full": {"protocol": "full", "metrics": {"NDCG@10": {"mean": 0.1}}}}
NOT_ONNX = {
    "pop": "ignores its input, so the traced graph keeps the example's batch size",
    # full ranking runs the target-dependent attention and evolution over chunks of items, a
    # loop the tracer fixes to the example's batch: refused by the export's own check
    "dien": "traced item chunks keep the example's batch size",
    "din": "traced item chunks keep the example's batch size",
}


def make_run(root: Path, name: str = "sasrec", variant: dict | None = None) -> Path:
    """A run folder as training leaves it: config.yaml, metrics.json and model/."""
    model = small_model(name, variant)
    run_dir = root / "run"
    save_model_dir(
        run_dir / "model", model, name, dataclasses.asdict(model.config),
        _vocabulary(),
    )  # fmt: skip
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"data": {"dataset": "tiny-set"}}))
    (run_dir / "metrics.json").write_text(json.dumps(METRICS))
    return run_dir


def _vocabulary():
    from seqrec.data.corpus import Vocabulary

    return Vocabulary(np.array(RAW), offset=1)


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    return export_run(make_run(tmp_path), tmp_path / "exported")


def test_export_writes_every_file_with_its_checksum(exported: Path) -> None:
    meta = json.loads((exported / "metadata.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["model"] == "sasrec"
    assert meta["dataset"] == "tiny-set" and meta["test_metrics"] == METRICS
    assert meta["n_items"] == N_ITEMS and meta["max_len"] == MAX_LEN
    files = sorted(p.name for p in exported.iterdir() if p.name != "metadata.json")
    assert sorted(meta["files"]) == files == ["config.json", "items.json", "weights.safetensors"]
    assert all(meta["files"][f] == sha256_of(exported / f) for f in files)
    assert json.loads((exported / "items.json").read_text()) == RAW


def test_the_exported_model_recommends_as_the_run_did(exported: Path, tmp_path: Path) -> None:
    loaded = Recommender.load(exported)
    from_run = Recommender.from_run(tmp_path / "run")
    history = RAW[3:9]
    assert loaded.recommend(history, k=10).items == from_run.recommend(history, k=10).items
    assert loaded.metadata["dataset"] == "tiny-set"


@pytest.mark.parametrize(("case"), CASES, ids=CASE_IDS)
def test_every_tensor_and_buffer_round_trips(case, tmp_path: Path) -> None:
    name, variant = case
    model = small_model(name, variant)
    folder = write_model_folder(tmp_path / "m", model, name, RAW)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["buffers"] == sorted(n for n, _ in model.named_buffers())
    loaded = Recommender.load(folder).model
    expected, got = model.state_dict(), loaded.state_dict()
    assert sorted(got) == sorted(expected)
    for key, tensor in expected.items():
        assert torch.equal(got[key], tensor), key
    if name == "pop":  # its counts live in a buffer only
        assert float(loaded.counts.sum()) == N_ITEMS * (N_ITEMS + 1) / 2


def _flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("part", ["weights.safetensors", "config.json", "items.json"])
def test_a_changed_file_is_refused_by_name(exported: Path, part: str) -> None:
    _flip_byte(exported / part, offset=len((exported / part).read_bytes()) // 2)
    with pytest.raises(ModelFolderError, match=rf"{part}: checksum mismatch"):
        Recommender.load(exported)


def test_a_missing_file_or_metadata_is_refused(exported: Path, tmp_path: Path) -> None:
    (exported / "items.json").unlink()
    with pytest.raises(ModelFolderError, match=r"items.json: listed in metadata.json but missing"):
        Recommender.load(exported)
    with pytest.raises(ModelFolderError, match=r"metadata.json is missing.*seqrec export"):
        Recommender.load(tmp_path / "run" / "model")


def test_another_format_version_is_refused(exported: Path) -> None:
    meta = json.loads((exported / "metadata.json").read_text())
    (exported / "metadata.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(ModelFolderError, match="format_version 99, this seqrec reads 2"):
        Recommender.load(exported)
    (exported / "metadata.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"metadata\.json: not readable JSON"):
        Recommender.load(exported)


def test_a_consistent_but_wrong_config_is_one_clear_error(exported: Path) -> None:
    """Checksums recomputed after an edit: the config itself is then checked on its own."""
    spec = json.loads((exported / "config.json").read_text())
    spec["config"]["hidden_size"] = 8
    (exported / "config.json").write_text(json.dumps(spec))
    meta = json.loads((exported / "metadata.json").read_text())
    meta["files"]["config.json"] = sha256_of(exported / "config.json")
    (exported / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=r"weights.safetensors: .*"):
        Recommender.load(exported)


def test_loading_never_unpickles(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert len(Recommender.load(exported).recommend(RAW[:3], k=4).items) == 4


def test_export_refuses_a_full_out_dir_and_a_run_of_seeds(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not empty"):
        export_run(run_dir, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    seeds = tmp_path / "seeds"
    (seeds / "seed-1").mkdir(parents=True)
    (run_dir / "model").rename(seeds / "seed-1" / "model")
    with pytest.raises(ModelFolderError, match=r"one model per seed: export one of .*seed-1"):
        export_run(seeds, tmp_path / "out")


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize(("case"), CASES, ids=CASE_IDS)
def test_onnx_scores_equal_pytorchs_or_the_model_is_refused_clearly(case, tmp_path: Path) -> None:
    """onnxruntime (CPU, fp32) within ATOL of PyTorch on inputs the export never saw."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    name, variant = case
    model = small_model(name, variant)
    path = tmp_path / "model.onnx"
    if name in NOT_ONNX:
        with pytest.raises(OnnxExportError, match=rf"{type(model).__name__} cannot be exported"):
            export_onnx(model, path)
        assert not path.exists()
        return
    export_onnx(model, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = example_inputs(N_ITEMS, model.max_len, 7, seed=11)
    ids[3] = 0  # a history of padding only
    with torch.no_grad():
        expected = ScoringGraph(model)(ids).numpy()
    got = session.run(None, {"item_seq": ids.numpy()})[0]
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=ATOL)


def test_cli_export_with_onnx_lists_the_graph_in_the_checksums(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    run_dir = make_run(tmp_path, "bert4rec")
    assert main(["export", str(run_dir), str(tmp_path / "out"), "--onnx"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["files"]["model.onnx"] == sha256_of(tmp_path / "out" / "model.onnx")
    _flip_byte(tmp_path / "out" / "model.onnx", offset=100)
    with pytest.raises(ModelFolderError, match=r"model\.onnx: checksum mismatch"):
        Recommender.load(tmp_path / "out")


def test_cli_export_of_a_model_without_onnx_support_is_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    run_dir = make_run(tmp_path, "pop")
    assert main(["export", str(run_dir), str(tmp_path / "out"), "--onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Pop cannot be exported to ONNX" in err
    assert not (tmp_path / "out").exists()


class _BranchesOnData(torch.nn.Module):
    """Doubles its scores when the last row starts with padding: tracing records one branch."""

    n_items, max_len = N_ITEMS, MAX_LEN

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(N_ITEMS + 1, 4)

    def full_sort_predict(self, batch) -> torch.Tensor:
        scores = self.table(batch.item_seq).sum(dim=1) @ self.table.weight.T  # (B, N + 1)
        return scores * 2 if bool(batch.item_seq[-1, 0] == 0) else scores


def test_an_export_that_differs_from_pytorch_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    with pytest.raises(OnnxExportError, match=r"_BranchesOnData .*differs from PyTorch by"):
        export_onnx(_BranchesOnData(), tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
