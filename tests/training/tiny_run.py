"""A tiny model following the model protocol (no transformer needed) and synthetic data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch


@dataclass(frozen=True)
class TinyConfig:
    n_items: int
    max_len: int = 8
    hidden_size: int = 16
    dropout: float = 0.1
    mask_prob: float = 0.2


class Tiny(nn.Module):
    """Mean of the (randomly masked) history embeddings -> item logits.

    Uses both sources of randomness the trainer must restore: the generator (input masking) and
    the global RNG (dropout).
    """

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items, self.max_len = config.n_items, config.max_len
        self.train_seq_len = config.max_len
        self.embedding = nn.Embedding(config.n_items + 2, config.hidden_size, padding_idx=0)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden_size, config.n_items + 1)

    def _encode(self, item_seq: Tensor) -> Tensor:
        emb = self.embedding(item_seq)  # (B, L, D)
        present = (item_seq > 0).float().unsqueeze(-1)  # (B, L, 1)
        mean = (emb * present).sum(1) / present.sum(1).clamp(min=1.0)  # (B, D)
        return self.dropout(self.norm(mean))

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        inputs, target = batch.item_seq[:, :-1], batch.item_seq[:, -1]
        drop = (
            torch.rand(inputs.shape, generator=generator, device=inputs.device)
            < self.config.mask_prob
        )
        inputs = inputs.masked_fill(drop, self.n_items + 1)
        logits = self.out(self._encode(inputs))  # (B, n_items + 1)
        return nn.functional.cross_entropy(logits, target)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        return self.out(self._encode(batch.item_seq))  # (B, n_items + 1)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.full_sort_predict(batch).gather(1, items)  # (B, C)


def write_interactions(
    path: Path, n_users: int = 30, n_items: int = 40, length: int = 12, seed: int = 0
) -> Path:
    """A TSV of users walking through items with a learnable next-item pattern (plus noise)."""
    rng = np.random.default_rng(seed)
    rows = ["user_id\titem_id\ttimestamp"]
    for u in range(n_users):
        start = rng.integers(n_items)
        for t in range(length):
            item = (start + t) % n_items if rng.random() < 0.8 else rng.integers(n_items)
            rows.append(f"u{u}\ti{item}\t{1000 * u + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def tiny_config(data: Path, run_dir: Path, **training: object) -> dict:
    return {
        "data": {"dataset": str(data)},
        "model": {"name": "tiny", "max_len": 6},
        "training": {"epochs": 3, "batch_size": 8, "lr": 0.01, "progress_bar": False, **training},
        "evaluation": {"protocols": ["full", "uniform10"], "metrics": ["NDCG@10", "HR@10"]},
        "output": {"dir": str(run_dir)},
    }


def register(patch: pytest.MonkeyPatch) -> None:
    """Makes ``model: {name: tiny}`` buildable from configs (undone with ``patch``)."""
    import seqrec.models as models

    patch.setitem(models.MODELS, "tiny", (Tiny, TinyConfig))


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a busy machine two threads make each op wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
