"""The HTTP service in-process (FastAPI's TestClient): every endpoint and every rejection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_models import N_ITEMS, item_ids, small_model

from seqrec.serving.app import ServeSettings, create_app
from seqrec.serving.batching import MicroBatcher
from seqrec.serving.export import write_model_folder
from seqrec.serving.recommender import Recommender

RAW = item_ids()
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = small_model("bert4rec")
    out = tmp_path_factory.mktemp("served") / "model"
    return write_model_folder(out, model, "bert4rec", RAW, dataset="tiny", test_metrics={"a": 1})


@pytest.fixture(scope="module")
def recommender(folder: Path) -> Recommender:
    return Recommender.load(folder)


@pytest.fixture(scope="module", params=[1, 8], ids=["direct", "micro-batched"])
def client(request, folder: Path) -> Iterator[TestClient]:
    """The app as ``seqrec serve`` builds it: the folder is loaded in the lifespan."""
    settings = ServeSettings(model_dir=str(folder), max_batch=request.param, max_body_bytes=LIMIT)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def as_pairs(body: dict) -> list[tuple[str, float]]:
    return [(entry["item"], entry["score"]) for entry in body["items"]]


def test_health_and_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "model": "bert4rec"}
    info = client.get("/model").json()
    assert info["model"] == "bert4rec" and info["dataset"] == "tiny"
    assert info["n_items"] == N_ITEMS and info["test_metrics"] == {"a": 1}
    assert info["limits"] == {"k": 1000, "history": 10000, "batch": 256, "body_bytes": LIMIT}


def test_recommend_equals_the_recommender(client: TestClient, recommender: Recommender) -> None:
    history = RAW[2:7]
    response = client.post("/recommend", json={"history": history, "k": 4})
    assert response.status_code == 200
    body = response.json()
    assert as_pairs(body) == recommender.recommend(history, k=4).items
    assert body["unknown_history"] == [] and body["unknown_candidates"] == []


def test_options_reach_the_recommender(client: TestClient, recommender: Recommender) -> None:
    history, candidates = RAW[:3], [RAW[0], *RAW[10:14]]
    request = {"history": history, "k": 3, "exclude_seen": False, "candidates": candidates}
    body = client.post("/recommend", json=request).json()
    expected = recommender.recommend(history, 3, exclude_seen=False, candidates=candidates)
    assert as_pairs(body) == expected.items and RAW[0] in [i for i, _ in expected.items]


def test_integer_ids_are_read_as_strings(tmp_path: Path) -> None:
    numeric = [str(i) for i in range(100, 100 + N_ITEMS)]
    other = write_model_folder(tmp_path / "numeric", small_model("pop"), "pop", numeric)
    with TestClient(create_app(ServeSettings(model_dir=str(other)))) as numeric_client:
        as_ints = numeric_client.post("/recommend", json={"history": [100, 101], "k": 2}).json()
        as_strs = numeric_client.post("/recommend", json={"history": ["100", "101"], "k": 2})
    assert as_ints == as_strs.json() and as_ints["unknown_history"] == []


def test_unknown_ids_are_reported_or_rejected(client: TestClient) -> None:
    body = client.post("/recommend", json={"history": ["zz", RAW[1]], "candidates": ["yy"]})
    assert body.status_code == 200
    assert body.json()["unknown_history"] == ["zz"] and body.json()["unknown_candidates"] == ["yy"]
    assert body.json()["items"] == []  # the only candidate was unknown
    rejected = client.post("/recommend", json={"history": ["zz", RAW[1]], "unknown_ids": "reject"})
    assert rejected.status_code == 422
    assert rejected.json() == {"detail": "unknown item id in history: 'zz' (1 unknown)"}


def test_batch_answers_each_request_in_order(client: TestClient, recommender) -> None:
    requests = [{"history": RAW[i : i + 4], "k": 2 + i} for i in range(5)]
    response = client.post("/recommend/batch", json={"requests": requests})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(requests)
    for result, request in zip(results, requests, strict=True):
        expected = recommender.recommend(request["history"], k=request["k"]).items
        assert [i for i, _ in as_pairs(result)] == [i for i, _ in expected]
        got_scores = [s for _, s in as_pairs(result)]  # one pass for all: float rounding differs
        assert got_scores == pytest.approx([s for _, s in expected], rel=1e-5)
    bad = [*requests[:2], {"history": ["nope"], "unknown_ids": "reject"}]
    rejected = client.post("/recommend/batch", json={"requests": bad})
    assert rejected.status_code == 422 and rejected.json()["detail"].startswith("requests[2]: ")


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/recommend", "/recommend/batch", "/health", "/model"} <= set(paths)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]
    assert schema["properties"]["k"]["maximum"] == 1000


ID = RAW[0]
MALFORMED = [  # (body, expected status, a field or phrase the answer names)
    (b"{", 422, "JSON decode error"),
    (b"", 422, "Field required"),
    (b"\xff\xfe\x00", 400, "error parsing the body"),
    (b"[" * 20_000 + b"]" * 20_000, 400, "error parsing the body"),
    (b"null", 422, "valid dictionary"),
    (b'"history"', 422, "valid dictionary"),
    (b"{}", 422, "history"),
    (b'{"history": "a b"}', 422, "history"),
    (b'{"history": []}', 422, "at least 1 item"),
    (b'{"history": [true]}', 422, "history"),
    (b'{"history": [null]}', 422, "history"),
    (b'{"history": [1.5]}', 422, "history"),
    (b'{"history": [""]}', 422, "at least 1 character"),
    (json.dumps({"history": ["x" * 257]}).encode(), 422, "at most 256 characters"),
    (json.dumps({"history": [ID] * 10_001}).encode(), 422, "at most 10000 items"),
    (json.dumps({"history": [ID], "k": 0}).encode(), 422, "greater than or equal to 1"),
    (json.dumps({"history": [ID], "k": 1001}).encode(), 422, "less than or equal to 1000"),
    (json.dumps({"history": [ID], "k": "5"}).encode(), 422, "valid integer"),
    (json.dumps({"history": [ID], "k": 2.0}).encode(), 422, "valid integer"),
    (b'{"history": ["a"], "k": 1e400}', 422, "valid integer"),
    (b'{"history": ["a"], "k": NaN}', 422, "valid integer"),
    (b'{"history": ["a"], "k": 123456789012345678901234567890}', 422, "less than or equal"),
    (json.dumps({"history": [ID], "exclude_seen": "maybe"}).encode(), 422, "exclude_seen"),
    (json.dumps({"history": [ID], "candidates": []}).encode(), 422, "candidates"),
    (json.dumps({"history": [ID], "unknown_ids": "ignore"}).encode(), 422, "unknown_ids"),
    (json.dumps({"history": [ID], "K": 3}).encode(), 422, "Extra inputs"),
]


@pytest.mark.parametrize(("body", "status", "named"), MALFORMED)
def test_malformed_bodies_get_a_4xx_that_says_why(client, body, status, named) -> None:
    response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert named in response.text


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"requests": []}, "at least 1 item"),
        ({"requests": [{"history": [ID]}] * 257}, "at most 256 items"),
        ({"requests": [{"history": [ID], "k": 0}]}, "greater than or equal to 1"),
        ({"requests": {"history": [ID]}}, "valid list"),
    ],
)
def test_malformed_batches_get_a_422(client: TestClient, body: dict, named: str) -> None:
    response = client.post("/recommend/batch", json=body)
    assert response.status_code == 422 and named in response.text


def test_a_body_over_the_limit_is_413_declared_or_chunked(client: TestClient) -> None:
    big = json.dumps({"history": [RAW[-1]] * 9_000}).encode()  # within the bounds, over LIMIT
    assert len(big) > LIMIT
    declared = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "over 65536 bytes" in declared.text

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    chunked = client.post(
        "/recommend", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    small = json.dumps({"history": [ID] * 1000}).encode()
    json_type = {"content-type": "application/json"}
    assert client.post("/recommend", content=small, headers=json_type).status_code == 200
    assert client.post("/recommend", content=small).status_code == 422  # not declared as JSON


def test_wrong_method_and_path_are_4xx(client: TestClient) -> None:
    assert client.get("/recommend").status_code == 405
    assert client.post("/nowhere", json={}).status_code == 404


def test_micro_batching_shares_forward_passes_and_keeps_each_answer(recommender) -> None:
    queries = [recommender.query(RAW[i : i + 3 + i % 4], k=3) for i in range(20)]
    expected = recommender.run(queries)

    async def concurrently() -> tuple[list, MicroBatcher]:
        batcher = MicroBatcher(recommender.run, max_batch=8, max_wait_ms=20)
        batcher.start()
        try:
            answers = await asyncio.gather(*(batcher.submit([q]) for q in queries))
        finally:
            await batcher.stop()
        return [a[0] for a in answers], batcher

    answers, batcher = asyncio.run(concurrently())
    assert batcher.served == 20 and batcher.batches <= 4  # 20 requests in batches of up to 8
    for got, want in zip(answers, expected, strict=True):
        assert [i for i, _ in got.items] == [i for i, _ in want.items]
        assert [s for _, s in got.items] == pytest.approx([s for _, s in want.items], rel=1e-5)


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    def run(queries: list[int]) -> list[int]:
        if 0 in queries:
            raise ValueError("no zeros")
        return [q * 2 for q in queries]

    async def scenario() -> tuple[object, list[int]]:
        batcher = MicroBatcher(run, max_batch=4, max_wait_ms=0)
        batcher.start()
        try:
            failed = await asyncio.gather(batcher.submit([0]), return_exceptions=True)
            return failed[0], await batcher.submit([1, 2])
        finally:
            await batcher.stop()

    error, later = asyncio.run(scenario())
    assert isinstance(error, ValueError) and later == [2, 4]
