"""Losses on gathered target positions: full softmax cross-entropy, sampled BCE and gBCE, and
GRU4Rec's BPR-max and TOP1-max over a pool of negatives shared by the batch.

Every loss takes hidden states that were gathered at target positions first (``(N, D)``), so no
``(B, L, n_items)`` tensor is ever built. The full softmax bounds its memory by computing logits
in chunks of targets, with the gradients computed chunk by chunk in the same pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Above this many logits (N x V), the full softmax is computed chunk by chunk (256 MiB of float32).
# At Beauty's size 2**26 was faster than 2**25 and than the dense path (benchmarks/chunked_ce.py).
MAX_LOGITS = 2**26


def _exp_chunk(logits: Tensor) -> tuple[Tensor, Tensor]:
    """``exp(logits - rowmax)`` in place in ``logits`` (n, V); returns logsumexp and 1 / row sum
    (n, 1): the softmax is the exponentials times that, applied later to the smaller factors."""
    top = logits.amax(dim=1, keepdim=True)  # (n, 1)
    total = logits.sub_(top).exp_().sum(dim=1, keepdim=True)  # (n, 1)
    return (top + total.log()).squeeze(1), total.reciprocal()


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Mean CE of ``hidden @ weight.T + bias`` against ``targets``, never holding all logits.

    When gradients are wanted (``with_grad``) they are computed in the same pass as the loss,
    chunk by chunk, while each chunk's exponentials are at hand: the backward pass only scales
    them, so no logit is computed twice (the loss is a scalar, so its gradient is the saved one
    times the incoming scalar). With ``p = softmax``, ``d CE / d logits = p - one_hot(target)``:
    ``p`` is ``exp * inv`` per row, and the scaling by ``inv`` and the one-hot part are applied
    to the (chunk, D) and (V,) factors rather than to the (chunk, V) exponentials.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # fp32 under autocast
    def forward(
        ctx,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        chunk: int,
        with_grad: bool,
    ) -> Tensor:
        n = hidden.shape[0]
        lse = torch.empty(n, dtype=hidden.dtype, device=hidden.device)
        grad_hidden = -weight[targets] if with_grad else None  # (N, D): the one-hot part
        grad_weight = torch.zeros_like(weight) if with_grad else None
        grad_bias = torch.zeros_like(bias) if with_grad and bias is not None else None
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk]
            exp = F.linear(h, weight, bias)  # (chunk, V) logits, exponentiated in place
            lse[start : start + chunk], inv = _exp_chunk(exp)
            if with_grad:
                grad_hidden[start : start + chunk] += (exp @ weight) * inv
                grad_weight.addmm_(exp.T, h * inv)
                if grad_bias is not None:
                    grad_bias.addmv_(exp.T, inv.squeeze(1))
            del exp  # freed before the next chunk's logits are allocated
        if with_grad:
            grad_weight.index_add_(0, targets, -hidden)
            if grad_bias is not None:
                grad_bias.index_add_(0, targets, -torch.ones_like(lse))
        target_logit = (hidden * weight[targets]).sum(-1)  # (N,)
        if bias is not None:
            target_logit = target_logit + bias[targets]
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.n = n
        return (lse - target_logit).mean()

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: Tensor):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        if grad_hidden is None:
            raise RuntimeError("the chunked softmax was computed without gradients (no_grad)")
        scale = grad / ctx.n
        grads = [None if g is None else g * scale for g in (grad_hidden, grad_weight, grad_bias)]
        return *grads, None, None, None


def full_softmax_ce(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    max_logits: int = MAX_LOGITS,
) -> Tensor:
    """Mean cross-entropy over the whole catalogue of ``hidden`` (N, D) against ``targets`` (N,).

    ``weight`` (V, D) and ``bias`` (V,) define logits ``hidden @ weight.T + bias``; ``targets``
    index rows of ``weight``. Up to ``max_logits`` logits are built at once: beyond that the
    softmax runs over chunks of targets, and the gradients are computed in the same pass
    (``benchmarks/chunked_ce.py`` measures both paths at Beauty's size).
    """
    if hidden.shape[0] == 0:
        raise ValueError("full_softmax_ce needs at least one target")
    if hidden.shape[0] * weight.shape[0] <= max_logits:
        return F.cross_entropy(F.linear(hidden, weight, bias), targets)
    n_chunks = -(-hidden.shape[0] * weight.shape[0] // max_logits)
    chunk = -(-hidden.shape[0] // n_chunks)  # equal chunks, no small last one
    inputs = (hidden, weight) if bias is None else (hidden, weight, bias)
    with_grad = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
    return _ChunkedSoftmaxCE.apply(hidden, weight, bias, targets, chunk, with_grad)


def uniform_negatives(
    targets: Tensor, n_items: int, k: int, generator: torch.Generator | None = None
) -> Tensor:
    """``k`` items per target (N, k), uniform over the items 1..n_items other than the target.

    Other items of the user's history may be drawn: with thousands of items that is rare and
    costs less than rejection sampling.
    """
    if n_items < 2:
        raise ValueError(f"negative sampling needs at least 2 items, got n_items={n_items}")
    draws = torch.randint(
        1, n_items, (targets.shape[0], k), generator=generator, device=targets.device
    )  # (N, k) in 1..n_items-1
    return draws + (draws >= targets[:, None]).long()  # skip the target itself


MAX_REDRAWS = 1000  # rejection rounds before giving up (only reached when almost all is seen)


def unseen_negatives(
    seen: Tensor, n_items: int, n: int, generator: torch.Generator | None = None
) -> Tensor:
    """``n`` items per row (B, n), uniform over the items 1..n_items not in that row of ``seen``.

    ``seen`` (B, S) holds each row's excluded items sorted ascending, padded with 0 in front (as
    ``pad_left`` gives sorted rows); SASRec's original code draws its negatives this way, outside
    the user's training items. Draws are rejected and redrawn, all rows at once, until none is
    seen. Draws within a row may repeat, as in the original.
    """
    if seen.ndim != 2:
        raise ValueError(f"seen must be (B, S) sorted item codes, got shape {tuple(seen.shape)}")
    distinct = (seen > 0) & torch.cat(
        [torch.ones_like(seen[:, :1], dtype=torch.bool), seen[:, 1:] != seen[:, :-1]], dim=1
    )
    if bool((distinct.sum(1) >= n_items).any()):
        raise ValueError("a row has seen every item: no negative can be drawn outside it")
    draws = torch.randint(
        1, n_items + 1, (seen.shape[0], n), generator=generator, device=seen.device
    )  # (B, n)
    for _ in range(MAX_REDRAWS):
        position = torch.searchsorted(seen, draws).clamp(max=seen.shape[1] - 1)  # (B, n)
        rejected = seen.gather(1, position) == draws
        if not bool(rejected.any()):
            return draws
        fresh = torch.randint(
            1, n_items + 1, draws.shape, generator=generator, device=seen.device
        )  # (B, n), only the rejected ones are used
        draws = torch.where(rejected, fresh, draws)
    raise RuntimeError(f"negative sampling did not finish in {MAX_REDRAWS} rounds")


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's beta = alpha * (t * (1 - 1/alpha) + 1/alpha), alpha = k / (n_items - 1).

    ``t = 0`` gives beta = 1 (plain BCE); ``t = 1`` gives beta = alpha, which calibrates the
    sampled model to the full softmax (Petrov & Macdonald, RecSys 2023).
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"gBCE calibration t must be in [0, 1], got {t}")
    alpha = n_negatives / (n_items - 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce(pos_scores: Tensor, neg_scores: Tensor, beta: float) -> Tensor:
    """gSASRec's generalised BCE, normalised as in its reference code (asash/gSASRec-pytorch).

    Per target: ``-log sigmoid(s+)^beta - sum_j log(1 - sigmoid(s-_j))``, divided by the
    ``1 + k`` logits it is made of (the reference takes the mean of the element-wise BCE over the
    positive and its ``k`` negatives), then the mean over targets. ``pos_scores`` (N,),
    ``neg_scores`` (N, k). The reference writes the positive term as a BCE with logit
    ``log(1 / (p^-beta - 1))``, clamped in float64; the softplus form here is the same value,
    exact and stable in float32: ``-log sigmoid(s) = softplus(-s)`` and
    ``-log(1 - sigmoid(s)) = softplus(s)``.
    """
    per_target = beta * F.softplus(-pos_scores) + F.softplus(neg_scores).sum(-1)  # (N,)
    return (per_target / (1 + neg_scores.shape[-1])).mean()


def sampled_bce(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """SASRec's binary cross-entropy with sampled negatives (Kang & McAuley's code).

    Per target ``-log sigmoid(s+) - sum_j log(1 - sigmoid(s-_j))`` (the original uses one
    negative), averaged over targets: ``pos_scores`` (N,), ``neg_scores`` (N, k).
    """
    return (F.softplus(-pos_scores) + F.softplus(neg_scores).sum(-1)).mean()


# ---------------------------------------------------------------- GRU4Rec's sampled ranking losses


def sampling_weights(counts: Tensor, alpha: float) -> Tensor:
    """GRU4Rec's sampling weights ``count ** alpha`` per item code; code 0 (padding) gets 0.

    ``alpha`` 0 samples uniformly over every item (also those never seen in training), 1 in
    proportion to popularity; GRU4Rec's ``sample_alpha`` is typically 0.5-0.75.
    """
    if alpha < 0:
        raise ValueError(f"sample_alpha must be >= 0, got {alpha}")
    weights = torch.ones_like(counts) if alpha == 0 else counts.clamp(min=0).pow(alpha)
    weights = weights.clone()
    weights[0] = 0.0
    return weights


def sample_pool(weights: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` item codes (n,) drawn with replacement in proportion to ``weights``: one pool of
    negatives shared by every target of a batch, as GRU4Rec's ``n_sample`` extra samples."""
    if n < 1:
        raise ValueError(f"the negative pool needs n >= 1 items, got {n}")
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def _negative_softmax(neg_scores: Tensor, valid: Tensor | None) -> Tensor:
    """Softmax over each row's negatives (N, S); entries with ``valid`` False get weight 0."""
    if valid is None:
        return neg_scores.softmax(dim=-1)
    masked = neg_scores.masked_fill(~valid, float("-inf"))
    top = masked.amax(dim=-1, keepdim=True).clamp(min=torch.finfo(neg_scores.dtype).min).detach()
    exp = (masked - top).exp()  # 0 where not valid
    return exp / exp.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(neg_scores.dtype).tiny)


def bpr_max(
    pos_scores: Tensor, neg_scores: Tensor, bpreg: float, valid: Tensor | None = None
) -> Tensor:
    """BPR-max (Hidasi & Karatzoglou, CIKM 2018), mean over targets.

    Per target with score r_i and negatives r_j weighted by s_j = softmax(r_j) over its
    negatives: ``-log(sum_j s_j sigmoid(r_i - r_j) + 1e-24) + bpreg * sum_j s_j r_j^2``. The
    second term is the score regularisation of the original code (``bpreg``). ``pos_scores``
    (N,), ``neg_scores`` (N, S); ``valid`` (N, S) False removes a negative (e.g. the target
    itself drawn into the pool).
    """
    weights = _negative_softmax(neg_scores, valid)  # (N, S)
    ranking = (torch.sigmoid(pos_scores[:, None] - neg_scores) * weights).sum(-1)  # (N,)
    penalty = (neg_scores.square() * weights).sum(-1)  # (N,)
    return (-torch.log(ranking + 1e-24) + bpreg * penalty).mean()


def top1_max(pos_scores: Tensor, neg_scores: Tensor, valid: Tensor | None = None) -> Tensor:
    """TOP1-max (Hidasi & Karatzoglou, CIKM 2018), mean over targets.

    Per target: ``sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2))`` with s_j the softmax over its
    negatives; ``sigmoid(r_j^2)`` is TOP1's own regularisation, pushing negative scores to 0.
    Shapes as in :func:`bpr_max`.
    """
    weights = _negative_softmax(neg_scores, valid)  # (N, S)
    terms = torch.sigmoid(neg_scores - pos_scores[:, None]) + torch.sigmoid(neg_scores.square())
    return (terms * weights).sum(-1).mean()


# ---------------------------------------------------------------- sampled softmax


def sampled_softmax_ce(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    negatives: Tensor,
    log_q: Tensor,
) -> Tensor:
    """Cross-entropy of each target against a pool of negatives shared by the batch, with the
    log-Q correction of sampled softmax (Bengio & Senecal 2008; Jean et al. 2015), mean over
    targets.

    ``hidden`` (N, D); ``weight`` (V, D) and ``bias`` (V,) are the output table indexed by item
    code; ``targets`` (N,) and ``negatives`` (K,) are codes; ``log_q`` (V,) is the log of each
    code's probability under the proposal the negatives were drawn from. Every logit, the
    target's too, is corrected by ``- log_q``, so the sampled softmax estimates the full one
    without the proposal's bias (for a uniform proposal the correction is a constant and
    changes nothing). A negative equal to a row's target ("accidental hit") is removed from
    that row. Costs N x K logits instead of N x V.
    """
    if hidden.shape[0] == 0:
        raise ValueError("sampled_softmax_ce needs at least one target")
    table = weight[negatives]  # (K, D)
    neg = F.linear(hidden, table, None if bias is None else bias[negatives])  # (N, K)
    neg = neg - log_q[negatives]
    pos = (hidden * weight[targets]).sum(-1) - log_q[targets]  # (N,)
    if bias is not None:
        pos = pos + bias[targets]
    neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (N, 1 + K)
    return (logits.logsumexp(dim=1) - pos).mean()


def proposal_log_q(counts: Tensor, sampler: str, alpha: float = 1.0) -> Tensor:
    """Log proposal probability per item code (V,) for ``sampled_softmax_ce``.

    ``uniform``: every item 1..n alike. ``popular``: ``count ** alpha`` (``sampling_weights``).
    ``in_batch``: the negatives are the batch's own targets, which arrive in proportion to their
    training frequency, so ``q`` is the unigram distribution (Yi et al., RecSys 2019). Padding
    (code 0) gets ``-inf`` and is never drawn; every item counts at least once, so an item that
    never occurs in training is drawn rarely and its correction stays finite.
    """
    counts = counts.clamp(min=1.0)  # code 0 is zeroed again by sampling_weights
    if sampler == "uniform":
        weights = sampling_weights(counts, 0.0)
    elif sampler == "popular":
        weights = sampling_weights(counts, alpha)
    elif sampler == "in_batch":
        weights = sampling_weights(counts, 1.0)
    else:
        raise ValueError(f"sampler must be uniform, popular or in_batch, got {sampler!r}")
    return (weights / weights.sum()).log()
