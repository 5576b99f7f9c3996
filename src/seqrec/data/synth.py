"""Synthetic interaction logs of any size, written to Parquet as they are generated.

Why: preprocessing and training at scale need data sets far larger than the public ones, with
known properties to check against. The generative model:

- item popularity is a power law: the item of popularity rank ``r`` (1-based) has probability
  proportional to ``r ** -alpha``; ids are a seeded permutation of ``1..items``, so an id says
  nothing about popularity;
- items are split at random into ``clusters`` (interests). Each user starts in a cluster and, after
  each interaction, moves to another one with probability ``switch`` (interests drift slowly).
  With probability ``drift`` the next item is drawn from the current cluster (by popularity
  within it), otherwise from the whole catalogue. Clusters are entered in proportion to their
  popularity mass, so every item keeps its power-law probability whatever ``drift`` is, while with
  ``drift > 0`` the next item shares the previous one's cluster far more often than chance: the
  next item is predictable from the history;
- sequence lengths are ``min_length - 1`` plus a geometric draw, with mean
  ``interactions_per_user``; timestamps are whole seconds increasing along each sequence (gaps can
  be 0, so equal timestamps occur).

Users are generated in blocks of ``BLOCK_USERS``, each with its own random stream derived from
``seed``, so memory is bounded by one chunk and the output depends only on the seed and the sizes
(not on ``chunk_users``). Columns: ``user_id``, ``item_id`` (int64) and ``timestamp`` (int64
seconds), the default column names of ``seqrec.data.readers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqrec.errors import ArgumentError

BLOCK_USERS = 10_000  # users per random stream: the unit of determinism
START_TIME = 1_600_000_000  # first possible timestamp (2020-09-13), seconds
YEAR = 365 * 24 * 3600
MEAN_GAP = 1800.0  # seconds between a user's interactions, on average
SCHEMA = pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()), ("timestamp", pa.int64())])


@dataclass(frozen=True)
class SynthSpec:
    """Sizes and shape of a synthetic log (see the module docstring for the model)."""

    users: int
    items: int
    interactions_per_user: float = 20.0
    min_length: int = 3
    alpha: float = 1.0
    drift: float = 0.0
    switch: float = 0.05
    clusters: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            ("users", self.users >= 1, "at least 1"),
            ("items", self.items >= 1, "at least 1"),
            ("min_length", self.min_length >= 1, "at least 1"),
            ("interactions_per_user", self.interactions_per_user >= self.min_length,
             f"at least min_length ({self.min_length})"),
            ("alpha", 0 <= self.alpha <= 10, "between 0 and 10"),
            ("drift", 0 <= self.drift <= 1, "between 0 and 1"),
            ("switch", 0 <= self.switch <= 1, "between 0 and 1"),
            ("clusters", 1 <= self.clusters <= self.items, f"between 1 and items ({self.items})"),
            ("seed", 0 <= self.seed < 2**63, "a non-negative integer"),
        )  # fmt: skip
        for name, ok, expected in checks:
            if not ok:
                flag = "--" + name.replace("_", "-")  # as ``seqrec data synth`` spells it
                raise ArgumentError(f"{flag}: expected {expected}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Catalogue:
    """Items by cluster: what the generator samples from (and what tests check against).

    ``ids`` and ``probability`` are ordered cluster by cluster; ``cluster_start[c]`` is the first
    position of cluster ``c``; ``cumulative`` is the running sum of ``probability``.
    """

    ids: np.ndarray  # (items,) int64 item ids
    cluster: np.ndarray  # (items,) int64 cluster of each position
    probability: np.ndarray  # (items,) float64, sums to 1
    cumulative: np.ndarray  # (items,) float64
    cluster_start: np.ndarray  # (clusters + 1,) int64
    cluster_mass: np.ndarray  # (clusters,) float64, sums to 1

    def cluster_of(self, item_ids: np.ndarray) -> np.ndarray:
        """The cluster of each item id."""
        lookup = np.empty(self.ids.max() + 1, dtype=np.int64)
        lookup[self.ids] = self.cluster
        return lookup[np.asarray(item_ids, dtype=np.int64)]


def catalogue(spec: SynthSpec) -> Catalogue:
    """The seeded items: ids, clusters and power-law probabilities."""
    rng = np.random.default_rng([spec.seed, 0])
    weight = np.arange(1, spec.items + 1, dtype=np.float64) ** -spec.alpha  # by popularity rank
    ids = rng.permutation(spec.items).astype(np.int64) + 1  # id of each rank
    # every cluster gets at least one item, the rest are spread at random
    cluster = np.concatenate(
        [rng.permutation(spec.clusters), rng.integers(0, spec.clusters, spec.items - spec.clusters)]
    )
    order = np.argsort(cluster, kind="stable")
    probability = weight[order] / weight.sum()
    cluster = cluster[order]
    start = np.searchsorted(cluster, np.arange(spec.clusters + 1))
    mass = np.add.reduceat(probability, start[:-1])
    return Catalogue(ids[order], cluster, probability, np.cumsum(probability), start, mass)


def _lengths(rng: np.random.Generator, n: int, spec: SynthSpec) -> np.ndarray:
    extra_mean = spec.interactions_per_user - spec.min_length + 1
    return spec.min_length - 1 + rng.geometric(1.0 / extra_mean, size=n).astype(np.int64)


def _clusters(
    rng: np.random.Generator, starts: np.ndarray, n: int, cat: Catalogue, switch: float
) -> np.ndarray:
    """(n,) the cluster of every position: a slowly switching chain per user, vectorised.

    A position either keeps the previous position's cluster or (first position of a user, or a
    switch) takes a fresh draw; each position then reads the draw at its latest switch.
    """
    fresh = rng.choice(len(cat.cluster_mass), size=n, p=cat.cluster_mass)
    switched = rng.random(n) < switch
    switched[starts] = True
    latest = np.maximum.accumulate(np.where(switched, np.arange(n), 0))
    return fresh[latest]


def _draw_items(
    cat: Catalogue, cluster: np.ndarray, follow: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """(n,) positions in ``cat``: by popularity within ``cluster`` where ``follow``, else overall.

    One inverse-CDF lookup serves both: ``u`` is scaled into the cluster's slice of the running
    sum, or spans the whole of it.
    """
    before = np.concatenate([[0.0], cat.cumulative])[cat.cluster_start[:-1]]  # (clusters,)
    base = np.where(follow, before[cluster], 0.0)
    width = np.where(follow, cat.cluster_mass[cluster], 1.0)
    position = np.searchsorted(cat.cumulative, base + u * width, side="right")
    low = np.where(follow, cat.cluster_start[cluster], 0)
    high = np.where(follow, cat.cluster_start[cluster + 1], len(cat.ids)) - 1
    return np.clip(position, low, high)  # float rounding at a slice's edges


def _timestamps(rng: np.random.Generator, offsets: np.ndarray) -> np.ndarray:
    """(n,) whole seconds: a random first time per user, then gaps (0 allowed: ties)."""
    starts, lengths = offsets[:-1], np.diff(offsets)
    gaps = np.floor(rng.exponential(MEAN_GAP, size=int(offsets[-1]))).astype(np.int64)
    gaps[starts] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], lengths)  # seconds since the user's first
    first_time = START_TIME + rng.integers(0, YEAR, size=len(starts))
    return np.repeat(first_time, lengths) + elapsed


def generate_block(spec: SynthSpec, cat: Catalogue, block: int) -> dict[str, np.ndarray]:
    """Users ``block * BLOCK_USERS ...`` (up to ``spec.users``): their columns as arrays."""
    rng = np.random.default_rng([spec.seed, 1, block])
    first_user = block * BLOCK_USERS
    n_users = min(BLOCK_USERS, spec.users - first_user)
    lengths = _lengths(rng, n_users, spec)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n = int(offsets[-1])
    cluster = _clusters(rng, offsets[:-1], n, cat, spec.switch)
    follow = rng.random(n) < spec.drift
    position = _draw_items(cat, cluster, follow, rng.random(n))
    return {
        "user_id": first_user + np.repeat(np.arange(n_users), lengths) + 1,
        "item_id": cat.ids[position],
        "timestamp": _timestamps(rng, offsets),
    }


def _chunks(spec: SynthSpec, chunk_users: int) -> Iterator[pa.Table]:
    """Tables of ``chunk_users`` users each (rounded up to whole blocks)."""
    cat = catalogue(spec)
    per_chunk = max(1, -(-chunk_users // BLOCK_USERS))
    n_blocks = -(-spec.users // BLOCK_USERS)
    for first in range(0, n_blocks, per_chunk):
        blocks = [
            generate_block(spec, cat, b) for b in range(first, min(first + per_chunk, n_blocks))
        ]
        columns = {k: np.concatenate([b[k] for b in blocks]) for k in SCHEMA.names}
        yield pa.table(columns, schema=SCHEMA)


def write_synthetic(spec: SynthSpec, output: str | Path, chunk_users: int = 100_000) -> dict:
    """Generate and write the log; returns what was written (rows, files).

    ``output`` ending in ``.parquet`` is one file with a row group per chunk; otherwise it is a
    folder of ``part-00000.parquet``, ... files, one per chunk (it must not hold Parquet files yet).
    """
    if chunk_users < 1:
        raise ArgumentError(f"--chunk-users: expected at least 1, got {chunk_users}")
    output = Path(output)
    rows, files = 0, []
    if output.suffix == ".parquet":
        output.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(output, SCHEMA) as writer:
            for table in _chunks(spec, chunk_users):
                writer.write_table(table, row_group_size=table.num_rows)
                rows += table.num_rows
        return {"rows": rows, "files": [str(output)]}
    if output.exists() and (not output.is_dir() or any(output.glob("*.parquet"))):
        raise ArgumentError(f"--output: {output} exists and is not an empty folder")
    output.mkdir(parents=True, exist_ok=True)
    for index, table in enumerate(_chunks(spec, chunk_users)):
        path = output / f"part-{index:05d}.parquet"
        pq.write_table(table, path, row_group_size=table.num_rows)
        rows += table.num_rows
        files.append(str(path))
    return {"rows": rows, "files": files}
