"""Ranking and click-through metrics: pure functions, accumulators, Transformers4Rec names,
uncertainty.

Knows nothing of models or data files: callers bring scores or ranks.
"""

from seqrec.metrics.accumulators import RankingMetrics
from seqrec.metrics.ctr import CTRMetrics, GroupAUC, auc, ctr_summary, gauc, group_auc, log_loss
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
    "CTRMetrics",
    "DCGAt",
    "GroupAUC",
    "MeanRecipricolRankAt",
    "MeanReciprocalRankAt",
    "NDCGAt",
    "PairedResult",
    "PrecisionAt",
    "RankingMetrics",
    "RecallAt",
    "auc",
    "average_precision",
    "bootstrap_ci",
    "compute",
    "ctr_summary",
    "dcg",
    "gauc",
    "group_auc",
    "hit_rate",
    "log_loss",
    "mrr",
    "ndcg",
    "paired_comparison",
    "parse_metric_name",
    "precision",
    "ranks_from_scores",
    "recall",
    "summarise",
]
