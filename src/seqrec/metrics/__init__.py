"""Ranking metrics: pure functions of ranks, accumulators, Transformers4Rec names, uncertainty.

Knows nothing of models or data files: callers bring scores or ranks.
"""

from seqrec.metrics.accumulators import RankingMetrics
from seqrec.metrics.ranking import (
    average_precision,
    compute,
    dcg,
    hit_rate,
    mrr,
    ndcg,
    parse_metric_name,
    precision,
    ranks_from_scores,
    recall,
)
from seqrec.metrics.stats import PairedResult, bootstrap_ci, paired_comparison, summarise
from seqrec.metrics.topk import (
    AvgPrecisionAt,
    DCGAt,
    MeanRecipricolRankAt,
    MeanReciprocalRankAt,
    NDCGAt,
    PrecisionAt,
    RecallAt,
)

__all__ = [
    "AvgPrecisionAt",
    "DCGAt",
    "MeanRecipricolRankAt",
    "MeanReciprocalRankAt",
    "NDCGAt",
    "PairedResult",
    "PrecisionAt",
    "RankingMetrics",
    "RecallAt",
    "average_precision",
    "bootstrap_ci",
    "compute",
    "dcg",
    "hit_rate",
    "mrr",
    "ndcg",
    "paired_comparison",
    "parse_metric_name",
    "precision",
    "ranks_from_scores",
    "recall",
    "summarise",
]
