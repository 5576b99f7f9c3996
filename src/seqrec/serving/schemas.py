"""Request and response bodies of the HTTP service, with explicit bounds.

Item ids are the raw ids of the data (strings; JSON integers are accepted and read as their
decimal string). A body that breaks a bound or a type gets a 422 naming the field; an unknown
field is an error too, so a typo (``"K": 5``) is not silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MAX_K = 1000
MAX_HISTORY = 10_000
MAX_CANDIDATES = 100_000
MAX_BATCH = 256
MAX_ID_CHARS = 256

ItemId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)] | StrictInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    """One history, oldest item first, and what to return."""

    history: list[ItemId] = Field(min_length=1, max_length=MAX_HISTORY)
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    candidates: list[ItemId] | None = Field(None, min_length=1, max_length=MAX_CANDIDATES)
    unknown_ids: Literal["drop", "reject"] = "drop"

    @field_validator("history", "candidates")
    @classmethod
    def _as_strings(cls, ids: list[str | int] | None) -> list[str] | None:
        return None if ids is None else [str(i) for i in ids]


class BatchRequest(_Strict):
    requests: list[RecommendRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ScoredItem(BaseModel):
    item: str
    score: float


class RecommendResponse(BaseModel):
    """Best first. ``unknown_history`` / ``unknown_candidates``: ids dropped as unknown."""

    items: list[ScoredItem]
    unknown_history: list[str]
    unknown_candidates: list[str]


class BatchResponse(BaseModel):
    results: list[RecommendResponse]


class Health(BaseModel):
    status: Literal["ok"]
    model: str


class ModelInfo(BaseModel):
    """What is being served: the exported folder's metadata and the service's limits."""

    model: str
    backend: str  # "torch" or "onnx"
    dataset: str | None
    n_items: int
    max_len: int
    seqrec_version: str | None
    format_version: int | None
    created: str | None
    test_metrics: dict | None
    limits: dict[str, int]
    batching: dict[str, float]
