"""Real processes: ``seqrec serve`` on a loopback port; ``seqrec recommend`` without Lightning."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_models import item_ids, small_model

from seqrec.data.corpus import Vocabulary
from seqrec.serving.export import write_model_folder
from seqrec.serving.recommender import Recommender
from seqrec.training.export import save_model_dir

ROOT = Path(__file__).resolve().parents[2]
RAW = item_ids()


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proc") / "model"
    return write_model_folder(
        out, small_model("sasrec", {"architecture": "original"}), "sasrec", RAW
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_seqrec_serve_answers_on_a_loopback_port(folder: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "seqrec.cli", "serve", str(folder), "--port", str(port)]
    server = subprocess.Popen([*command, "--max-batch", "4"], env=env(), stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "seqrec serve did not start in 60 s"
                time.sleep(0.2)
        response = httpx.post(f"{url}/recommend", json={"history": RAW[:5], "k": 3}, timeout=10)
        assert response.status_code == 200
        expected = Recommender.load(folder).recommend(RAW[:5], k=3).items
        assert [(e["item"], e["score"]) for e in response.json()["items"]] == expected
        bad = httpx.post(f"{url}/recommend", content=b"{", timeout=10)
        assert bad.status_code == 422
        assert httpx.get(f"{url}/model", timeout=10).json()["model"] == "sasrec"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_seqrec_serve_of_a_bad_folder_is_one_line(tmp_path: Path, capsys) -> None:
    from seqrec.cli import main

    assert main(["serve", str(tmp_path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "metadata.json is missing" in err


NO_HEAVY = (  # run `seqrec recommend` on each folder given, then list heavy modules loaded
    "import sys\n"
    "import seqrec.serving.app, seqrec.serving.export\n"
    "from seqrec.cli import main\n"
    "for target in sys.argv[1:]:\n"
    "    assert main(['recommend', target, '--history', *%r, '-k', '3']) == 0\n"
    "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning',"
    " 'matplotlib', 'torchmetrics'} | {m for m in sys.modules if m in ('seqrec.pipeline',"
    " 'seqrec.training.fit', 'seqrec.evaluation.evaluator')})\n"
    "print('heavy:', heavy, file=sys.stderr)\n"
)


def test_seqrec_recommend_imports_neither_lightning_nor_matplotlib(folder, tmp_path) -> None:
    """On an exported folder and on a run folder (whose model/ has no metadata), one process."""
    model = Recommender.load(folder).model
    config = dataclasses.asdict(model.config)
    vocabulary = Vocabulary(np.array(RAW), offset=1)
    save_model_dir(tmp_path / "run" / "model", model, "sasrec", config, vocabulary)
    script = NO_HEAVY % (RAW[:4],)
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(tmp_path / "run")], env=env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stderr
    expected = [item for item, _ in Recommender.load(folder).recommend(RAW[:4], k=3).items]
    lines = done.stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == expected * 2


def test_seqrec_recommend_drops_unknown_ids_when_asked(folder: Path, capsys) -> None:
    from seqrec.cli import main

    assert main(["recommend", str(folder), "--history", RAW[1], "nope"]) == 2
    assert "unknown item id in history: 'nope'" in capsys.readouterr().err
    assert main(["recommend", str(folder), "--history", RAW[1], "nope", "--drop-unknown"]) == 0
    captured = capsys.readouterr()
    assert "dropped unknown item ids: nope" in captured.err
    assert len(captured.out.strip().splitlines()) == 10
