"""Two scores that know no sequence, under the labelled protocol: what DIN and DIEN must beat.

On data with click labels (``data.click_labels``) the labelled protocol scores every held-out
interaction against its own label. Two baselines from the training split alone, on the data,
split and test users of a config (default ``configs/dien-ml-100k-labels.yaml``):

- **popularity**: the item's number of training interactions (``configs/pop-ml-100k.yaml``'s
  score; it knows nothing of the labels);
- **item click rate**: the item's share of clicked training interactions, shrunk towards the
  overall click rate with ``--prior`` pseudo-interactions, ``(clicks + m p) / (shown + m)``.

Reports AUC, GAUC and LogLoss (the click rate only: popularity counts are no probabilities) with
their 95% user-bootstrap intervals, printed and saved to ``results/labelled_baselines.{json,md}``.

    python benchmarks/labelled_baselines.py [--config configs/dien-ml-100k-labels.yaml] [--prior 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.config import load_config
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import LabelledImpressions
from seqrec.training.prepare import prepare_data

RESULTS = Path(__file__).parent / "results"


class ItemScore(nn.Module):
    """Scores every (user, item) pair by a fixed per-item table (n_items + 1,)."""

    max_len = 50

    def __init__(self, table: np.ndarray, probabilities: bool) -> None:
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.predicts_probabilities = probabilities

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.table[items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/dien-ml-100k-labels.yaml")
    parser.add_argument("--prior", type=float, default=10.0, help="pseudo-interactions")
    args = parser.parse_args()
    config = load_config(args.config)
    data = prepare_data(config.data)
    train, n_items = data.split.train, data.corpus.n_items
    shown = np.bincount(train.items, minlength=n_items + 1).astype(np.float64)
    clicks = np.bincount(train.items, weights=train.labels, minlength=n_items + 1)
    overall = float(train.labels.mean())
    baselines = {
        "popularity": (ItemScore(shown, False), ("AUC", "GAUC")),
        "item click rate": (
            ItemScore((clicks + args.prior * overall) / (shown + args.prior), True),
            ("AUC", "GAUC", "LogLoss"),
        ),
    }
    rows, lines = {}, []
    for name, (model, metrics) in baselines.items():
        evaluator = Evaluator(
            data.split.test, LabelledImpressions(), n_items, metrics=metrics,
            bootstrap=config.evaluation.bootstrap,
        )  # fmt: skip
        summary = evaluator.evaluate(model).summary
        rows[name] = summary
        cells = [f"{s['mean']:.4f} [{s['ci_low']:.4f}, {s['ci_high']:.4f}]" for s in
                 summary.values()]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells + [""] * (3 - len(cells))) + " |")
    table = "\n".join(
        [f"{args.config}: labelled protocol, {len(data.split.test):,} test users, training click "
         f"rate {overall:.4f}", "", "| baseline | AUC | GAUC | LogLoss |", "|---|---|---|---|",
         *lines]
    )  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    report = {"config": args.config, "prior": args.prior, "click_rate": overall, "rows": rows}
    (RESULTS / "labelled_baselines.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "labelled_baselines.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
