"""The ONNX back end answers as the PyTorch one, ties by ascending code, and never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from serving_models import CASE_IDS, CASES, N_ITEMS, item_ids, small_model

from seqrec.cli import main
from seqrec.serving.export import write_model_folder
from seqrec.serving.onnx import ATOL
from seqrec.serving.onnx_recommender import OnnxRecommender, top_k
from seqrec.serving.recommender import Recommender

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

ONNX_CASES = [
    (c, i) for c, i in zip(CASES, CASE_IDS, strict=True) if c[0] not in ("pop", "dien", "din")
]
RAW = item_ids()


def _export(tmp_path: Path, name: str, variant: dict | None = None) -> Path:
    model = small_model(name, variant)
    return write_model_folder(tmp_path / "out", model, name, RAW, onnx=True)


@pytest.mark.parametrize("case", [c for c, _ in ONNX_CASES], ids=[i for _, i in ONNX_CASES])
def test_onnx_answers_equal_pytorchs(case, tmp_path: Path) -> None:
    """Same items in the same order, scores within ATOL, for every option and history length."""
    folder = _export(tmp_path, *case)
    torch_side, onnx_side = Recommender.load(folder), OnnxRecommender.load(folder)
    rng = np.random.default_rng(3)
    histories = [[], RAW[:1], RAW[:40]] + [
        list(rng.choice(RAW, size=n)) for n in rng.integers(1, 20, size=12)
    ]
    for options in (
        {"k": 5},
        {"k": 50, "exclude_seen": False},
        {"k": 3, "candidates": RAW[:6]},
        {"k": N_ITEMS},  # more than the candidates left after the history
    ):
        expected = torch_side.recommend_many(histories, **options)
        got = onnx_side.recommend_many(histories, **options)
        for e, g in zip(expected, got, strict=True):
            scores = np.array([s for _, s in e.items])
            np.testing.assert_allclose([s for _, s in g.items], scores, rtol=0, atol=ATOL)
            # equal scores may come in another order (torch.topk leaves it open): compare the
            # items whose score no other listed item shares
            tied = (np.abs(scores[:, None] - scores[None, :]) <= ATOL).sum(1) > 1
            assert [i for (i, _), t in zip(g.items, tied, strict=True) if not t] == [
                i for (i, _), t in zip(e.items, tied, strict=True) if not t
            ]


def test_top_k_orders_ties_by_ascending_code_also_at_the_boundary() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float32)  # many ties
    scores[:, 5] = -np.inf
    for k in (1, 3, 7, 30):
        values, codes = top_k(scores, k)
        for row in range(len(scores)):
            brute = sorted(range(30), key=lambda c, r=row: (-scores[r, c], c))[:k]
            assert codes[row].tolist() == brute
            assert values[row].tolist() == scores[row, brute].tolist()


def test_cli_recommend_uses_onnx_without_importing_torch(tmp_path: Path) -> None:
    folder = _export(tmp_path, "sasrec")
    argv = ["recommend", str(folder), "--history", RAW[0], RAW[1], "-k", "3"]
    code = (
        f"import sys; from seqrec.cli import main; rc = main({argv!r}); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch', rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == "no torch 0"
    expected = Recommender.load(folder).recommend([RAW[0], RAW[1]], 3).items
    assert [line.split("\t")[1] for line in out[:-1]] == [item for item, _ in expected]


def test_backend_onnx_needs_an_exported_folder_with_the_graph(tmp_path: Path, capsys) -> None:
    model = small_model("sasrec")
    folder = write_model_folder(tmp_path / "plain", model, "sasrec", RAW)  # no model.onnx
    assert main(["recommend", str(folder), "--history", RAW[0], "--backend", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqrec: error:") and "model.onnx is missing" in err
    assert "\n" not in err
    # auto falls back to PyTorch when the folder has no graph
    assert main(["recommend", str(folder), "--history", RAW[0], "-k", "2"]) == 0


def test_the_service_answers_through_onnx(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from seqrec.serving.app import ServeSettings, create_app

    folder = _export(tmp_path, "bert4rec")
    settings = ServeSettings(model_dir=str(folder), backend="onnx")
    with TestClient(create_app(settings)) as client:
        info = client.get("/model").json()
        assert (info["model"], info["backend"]) == ("bert4rec", "onnx")
        got = client.post("/recommend", json={"history": RAW[:4], "k": 5}).json()["items"]
    expected = OnnxRecommender.load(folder).recommend(RAW[:4], 5).items
    assert [(g["item"], g["score"]) for g in got] == [(i, pytest.approx(s)) for i, s in expected]
