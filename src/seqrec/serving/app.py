"""The HTTP service (FastAPI): ``POST /recommend``, ``POST /recommend/batch``, ``GET /health``,
``GET /model``; OpenAPI at ``/docs``.

Each worker process loads the model once, when it starts (the app's lifespan). User input never
causes a 5xx: a body that is not JSON, has a wrong type or breaks a bound gets a 422 naming the
field, an unknown item id with ``"unknown_ids": "reject"`` a 422 naming the id, and a body over
``max_body_bytes`` a 413 before it is parsed.

``ServeSettings.max_batch`` > 1 (the default, 32) turns micro-batching on
(``seqrec.serving.batching``): requests that arrive while a forward pass runs share the next one,
and the default ``max_wait_ms = 0`` makes no request wait for company. With ``max_batch = 1``
each request runs its own forward pass in the event loop's thread. Measured with
``benchmarks/serve_load.py``: batching multiplies throughput under concurrency and costs little
at concurrency 1; waiting for a batch to fill (2 ms) did not pay.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from seqrec.serving.backends import Backend, load_recommender
from seqrec.serving.batching import MicroBatcher
from seqrec.serving.queries import Query, RawIdRecommender, Recommendation, UnknownItemError
from seqrec.serving.schemas import (
    MAX_BATCH,
    MAX_HISTORY,
    MAX_K,
    BatchRequest,
    BatchResponse,
    Health,
    ModelInfo,
    RecommendRequest,
    RecommendResponse,
)

ENV = "SEQREC_SERVE"  # settings handed to each worker process, as JSON


@dataclass(frozen=True)
class ServeSettings:
    """How a worker serves. ``threads``: intra-op threads per worker (see ``serve``);
    ``backend``: ``auto``, ``torch`` or ``onnx`` (``seqrec.serving.backends``)."""

    model_dir: str = ""
    max_batch: int = 32
    max_wait_ms: float = 0.0
    max_body_bytes: int = 1 << 20
    threads: int = 1
    backend: Backend = "auto"


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets a 413, whatever its framing.

    The body is read here (at most ``limit`` + one chunk) and handed on, so a declared
    ``Content-Length`` and a chunked body are held to the same limit.
    """

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)  # disconnected
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._too_large(send)
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await self.app(scope, _replay([body], receive), send)

    async def _too_large(self, send: Callable) -> None:
        detail = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(detail))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": detail})


def _replay(messages: list[dict], then: Callable | None = None) -> Callable[[], Awaitable[dict]]:
    """An ASGI ``receive`` that gives ``messages`` first, then waits on ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


def _response(answer: Recommendation) -> dict[str, Any]:
    return {
        "items": [{"item": item, "score": score} for item, score in answer.items],
        "unknown_history": answer.unknown,
        "unknown_candidates": answer.unknown_candidates,
    }


def _query(recommender: RawIdRecommender, request: RecommendRequest, where: str = "") -> Query:
    try:
        return recommender.query(
            request.history, request.k, request.exclude_seen, request.candidates,
            request.unknown_ids,
        )  # fmt: skip
    except UnknownItemError as error:
        raise HTTPException(status_code=422, detail=f"{where}{error}") from error


async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; the offending input is not echoed (it may not be valid JSON,
    e.g. ``1e400`` parses to inf, which FastAPI's own handler fails to encode with a 500)."""
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")}
        for e in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": errors})


def _model_info(recommender: RawIdRecommender, settings: ServeSettings) -> dict[str, Any]:
    meta = recommender.metadata
    return {
        "model": recommender.model_name,
        "backend": recommender.backend,
        "dataset": meta.get("dataset"),
        "n_items": recommender.n_items,
        "max_len": recommender.max_len,
        "seqrec_version": meta.get("seqrec_version"),
        "format_version": meta.get("format_version"),
        "created": meta.get("created"),
        "test_metrics": meta.get("test_metrics"),
        "limits": {
            "k": MAX_K,
            "history": MAX_HISTORY,
            "batch": MAX_BATCH,
            "body_bytes": settings.max_body_bytes,
        },
        "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
    }


def create_app(settings: ServeSettings, recommender: RawIdRecommender | None = None) -> FastAPI:
    """The service for ``settings.model_dir`` (loaded at start-up), or for ``recommender``."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["recommender"] = recommender or load_recommender(
            settings.model_dir, settings.backend, settings.threads, run_folders=False
        )
        state["info"] = _model_info(state["recommender"], settings)
        batcher = None
        if settings.max_batch > 1:
            batcher = MicroBatcher(
                state["recommender"].run, settings.max_batch, settings.max_wait_ms
            )
            batcher.start()
        state["batcher"] = batcher
        yield
        if batcher is not None:
            await batcher.stop()

    app = FastAPI(title="seqrec", summary="Top-k items after a history of ids", lifespan=lifespan)

    async def answer(queries: list[Query]) -> list[dict[str, Any]]:
        batcher = state["batcher"]
        if batcher is None:
            answers = state["recommender"].run(queries)
        else:
            answers = await batcher.submit(queries)
        return [_response(a) for a in answers]

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: RecommendRequest) -> dict[str, Any]:
        """Top ``k`` items after ``history``; unknown ids are dropped and listed (or rejected)."""
        return (await answer([_query(state["recommender"], request)]))[0]

    @app.post("/recommend/batch", response_model=BatchResponse)
    async def recommend_batch(batch: BatchRequest) -> dict[str, Any]:
        """Several requests in one call, answered in order."""
        rec = state["recommender"]
        queries = [_query(rec, r, f"requests[{i}]: ") for i, r in enumerate(batch.requests)]
        return {"results": await answer(queries)}

    @app.get("/health", response_model=Health)
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": state["info"]["model"]}

    @app.get("/model", response_model=ModelInfo)
    async def model() -> dict[str, Any]:
        return state["info"]

    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app of one ``seqrec serve`` worker, configured by ``$SEQREC_SERVE``."""
    return create_app(ServeSettings(**json.loads(os.environ[ENV])))


def serve(
    settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> None:
    """Run the service with uvicorn; the folder is verified here first, then in every worker.

    Each worker uses ``settings.threads`` torch threads (default 1): one request's forward pass
    is a few small matrix products, which a second thread barely shortens, and with several
    workers on few cores more threads than cores only contend. Scale with ``workers``.
    """
    import uvicorn

    # a bad folder fails here, in one line
    recommender = load_recommender(
        settings.model_dir, settings.backend, settings.threads, run_folders=False
    )
    options = {"host": host, "port": port, "access_log": False, "log_level": "warning"}
    if workers == 1:  # this process serves: the model is loaded once
        uvicorn.run(create_app(settings, recommender), **options)
        return
    settings = ServeSettings(**{**asdict(settings), "model_dir": str(Path(settings.model_dir))})
    os.environ[ENV] = json.dumps(asdict(settings))
    uvicorn.run("seqrec.serving.app:app_from_env", factory=True, workers=workers, **options)
