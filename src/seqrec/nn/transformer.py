"""Transformer encoder for left-padded item sequences, built on ``scaled_dot_product_attention``.

Post-LN blocks as in BERT, BERT4Rec and SASRec: ``x = LN(x + Dropout(Attention(x)))`` then
``x = LN(x + Dropout(FFN(x)))``. The encoder reads item *embeddings* rather than ids so that a
masking objective can replace some of them (by a mask embedding) before positions are added.

Positions are aligned to the newest item: column ``j`` of an ``L``-wide input gets position
``max_len - L + j``, so the newest item always sits at position ``max_len - 1`` and the same history
gets the same positions whatever the amount of left padding.

GELU is the exact (erf) form: BERT's tanh approximation differs by less than 1e-3 and costs four
times as much on CPU.

Attention masks use one polarity everywhere: a boolean ``True`` means "may attend", which is also
what SDPA expects, so :func:`attention_mask` is the single place where the padding mask
(``True`` = padding) is turned into attention permissions.

:meth:`TransformerEncoder.two_stream` runs XLNet's two-stream attention (Yang et al., NeurIPS
2019) with the same blocks, for permutation language modeling: a content stream over every
column and a query stream at the target columns only (see there).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Attention = Literal["causal", "bidirectional"] | Tensor
ACTIVATIONS = ("gelu", "relu")


def attention_mask(padding: Tensor, attention: Attention) -> tuple[Tensor | None, bool]:
    """SDPA's ``(attn_mask, is_causal)`` for a batch with padding ``(B, L)`` (True = padding).

    ``attention`` is ``"causal"``, ``"bidirectional"`` or an explicit ``(B, L, L)`` boolean mask
    (True = query ``i`` may attend key ``j``). A real position never sees padding. No query may
    be left without a visible key (its softmax would be NaN): under a causal or explicit mask
    every position also sees itself, which covers left padding; bidirectionally, padding queries
    see the row's real items and a row of padding only sees itself. What padding positions
    compute is never read. Returns no mask at all when ``is_causal`` or plain attention suffices.
    """
    explicit = isinstance(attention, Tensor)
    if not explicit and attention not in ("causal", "bidirectional"):
        raise ValueError(
            f"attention must be 'causal', 'bidirectional' or a (B, L, L) bool mask, "
            f"got {attention!r}"
        )
    has_padding = bool(padding.any())
    if not explicit and not has_padding:
        return None, attention == "causal"
    keys = ~padding  # (B, L) True = may be attended
    if attention == "bidirectional":
        # queries share one key mask per row; a row of padding only may see all of itself
        keys = keys | ~keys.any(dim=1, keepdim=True)
        return keys[:, None, None, :], False  # (B, 1, 1, L)
    width = padding.shape[1]
    eye = torch.eye(width, dtype=torch.bool, device=padding.device)
    allowed = keys[:, None, :] | eye  # (B, L, L)
    if explicit:
        if attention.shape != allowed.shape or attention.dtype != torch.bool:
            raise ValueError(
                f"explicit attention mask must be bool {tuple(allowed.shape)}, got "
                f"{attention.dtype} {tuple(attention.shape)}"
            )
        allowed = allowed & (attention | eye)
    else:
        allowed = allowed & torch.ones_like(eye).tril()
    return allowed[:, None], False  # (B, 1, L, L)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout that draws 16 random bits per element, four per 64-bit draw.

    Same distribution as ``F.dropout`` up to ``p`` rounded to a multiple of 1/65536, and about
    three times faster on CPU, where random number generation dominates dropout's cost. Uses the
    global random state, like ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    n = x.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    keep = draws.view(torch.int16)[:n].view(x.shape) >= round(p * 65536) - 32768
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


def target_order(positions: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Columns of the True ``positions`` (B, L), first in each row: (B, T) and valid (B, T)."""
    counts = positions.sum(dim=1)  # (B,)
    order = positions.to(torch.uint8).argsort(dim=1, descending=True, stable=True)
    order = order[:, :width]  # (B, T) target columns in column order, then others
    valid = torch.arange(width, device=positions.device) < counts[:, None]  # (B, T)
    return order, valid


class TransformerBlock(nn.Module):
    """Multi-head self-attention (one fused QKV projection) and a feed-forward layer, post-LN."""

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        inner_size: int,
        hidden_dropout: float,
        attn_dropout: float,
        activation: str,
        layer_norm_eps: float,
    ) -> None:
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.hidden_dropout = hidden_dropout
        self.attn_dropout = attn_dropout
        self.activation = activation
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attn_out = nn.Linear(hidden_size, hidden_size)
        self.attn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ffn_in = nn.Linear(hidden_size, inner_size)
        self.ffn_out = nn.Linear(inner_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def _heads(self, x: Tensor) -> Tensor:
        batch, width, hidden = x.shape
        return x.view(batch, width, self.n_heads, hidden // self.n_heads).transpose(1, 2)

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        """SDPA over heads; q (B, T, D), k and v (B, L, D) -> (B, T, D)."""
        att = F.scaled_dot_product_attention(
            self._heads(q),
            self._heads(k),
            self._heads(v),
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # (B, H, T, Dh)
        return att.transpose(1, 2).flatten(2)  # (B, T, D)

    def _finish(self, x: Tensor, att: Tensor) -> Tensor:
        """Residual + LayerNorm around attention output ``att``, then the feed-forward layer."""
        x = self.attn_norm(x + dropout(self.attn_out(att), self.hidden_dropout, self.training))
        inner = self.ffn_in(x)
        inner = F.gelu(inner) if self.activation == "gelu" else F.relu(inner)
        out = dropout(self.ffn_out(inner), self.hidden_dropout, self.training)
        return self.ffn_norm(x + out)

    def forward(self, x: Tensor, mask: Tensor | None, is_causal: bool) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 x (B, L, D)
        return self._finish(x, self._attend(q, k, v, mask, is_causal))

    def at_positions(
        self, x: Tensor, mask: Tensor | None, is_causal: bool, positions: Tensor
    ) -> Tensor:
        """This block's output (N, D) at the True ``positions`` (B, L) only, in row-major order.

        Keys and values still cover every column, but queries, the feed-forward layer and the
        norms run on the selected positions alone: with 20% of positions selected, most of the
        block's cost is saved.
        """
        width, hidden = x.shape[1], x.shape[2]
        n_queries = int(positions.sum(dim=1).max())
        if 2 * n_queries > width:  # little to save: run the whole block
            return self(x, mask, is_causal)[positions]
        order, valid = target_order(positions, n_queries)  # (B, T), (B, T)
        x_q = x.gather(1, order.unsqueeze(-1).expand(-1, -1, hidden))  # (B, T, D)
        weight, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x_q, weight[:hidden], bias[:hidden])  # (B, T, D)
        k, v = F.linear(x, weight[hidden:], bias[hidden:]).chunk(2, dim=-1)  # 2 x (B, L, D)
        if is_causal:  # key j visible to the query at column order[b, t] when j <= that column
            columns = torch.arange(width, device=x.device)
            mask = (columns <= order.unsqueeze(-1)).unsqueeze(1)  # (B, 1, T, L)
        elif mask is not None and mask.shape[2] == width:
            mask = mask.gather(2, order[:, None, :, None].expand(-1, 1, -1, width))  # (B,1,T,L)
        att = self._attend(q, k, v, mask, is_causal=False)  # (B, T, D)
        return self._finish(x_q[valid], att[valid])  # (N, D)

    def two_stream(
        self, h: Tensor, g: Tensor, content_mask: Tensor, query_mask: Tensor, has_key: Tensor
    ) -> tuple[Tensor, Tensor]:
        """XLNet's two streams through this block, with the same weights: (h', g').

        The content stream ``h`` (B, L, D) attends to ``h`` under ``content_mask``; the query
        stream ``g`` (B, T, D) takes its queries from ``g`` and its keys and values from ``h``
        under ``query_mask`` (both SDPA masks, True = may attend). Each is followed by this
        block's residual, LayerNorm and feed-forward layer. ``has_key`` (B, 1, T) False marks
        query rows with nothing to read; their attention output is zero.
        """
        q, k, v = self.qkv(h).chunk(3, dim=-1)  # 3 x (B, L, D)
        h_out = self._finish(h, self._attend(q, k, v, content_mask, is_causal=False))
        return h_out, self._query_stream(g, k, v, query_mask, has_key)

    def query_stream(self, h: Tensor, g: Tensor, query_mask: Tensor, has_key: Tensor) -> Tensor:
        """The query stream's output (B, T, D) alone, as in :meth:`two_stream` (the last block)."""
        hidden = h.shape[2]
        weight, bias = self.qkv.weight, self.qkv.bias
        k, v = F.linear(h, weight[hidden:], bias[hidden:]).chunk(2, dim=-1)  # 2 x (B, L, D)
        return self._query_stream(g, k, v, query_mask, has_key)

    def _query_stream(
        self, g: Tensor, k: Tensor, v: Tensor, mask: Tensor, has_key: Tensor
    ) -> Tensor:
        hidden = g.shape[2]
        q = F.linear(g, self.qkv.weight[:hidden], self.qkv.bias[:hidden])  # (B, T, D)
        att = self._attend(q, k, v, mask, is_causal=False)  # (B, T, D)
        # a query with no visible key attended to a placeholder row: its output carries nothing
        return self._finish(g, att * has_key.transpose(1, 2).to(att.dtype))


class TransformerEncoder(nn.Module):
    """Item + position embeddings, LayerNorm, dropout and ``n_layers`` post-LN blocks.

    ``item_embedding`` has ``n_tokens`` rows (row 0 = padding, kept at zero); models share it with
    their output layer. Call :meth:`embed` on ids, optionally replace some embeddings, then call
    the module on the embeddings with the padding mask and the attention kind.
    """

    def __init__(
        self,
        n_tokens: int,
        max_len: int,
        hidden_size: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        hidden_dropout: float = 0.2,
        attn_dropout: float = 0.2,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-12,
        features: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.max_len = max_len
        self.item_embedding = nn.Embedding(n_tokens, hidden_size, padding_idx=0)
        self.features = features  # ids (B, L) -> (B, L, hidden_size) added to item embeddings
        self.position_embedding = nn.Embedding(max_len, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.hidden_dropout = hidden_dropout
        self.blocks = nn.ModuleList(
            TransformerBlock(
                hidden_size,
                n_heads,
                inner_size,
                hidden_dropout,
                attn_dropout,
                activation,
                layer_norm_eps,
            )
            for _ in range(n_layers)
        )

    def reset_parameters(self, std: float) -> None:
        """BERT initialisation: truncated normal (at 2 std) weights, zero biases, unit LayerNorm."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def embed(self, item_ids: Tensor) -> Tensor:
        """Item embeddings of ``item_ids`` (B, L): (B, L, D), without positions (plus the item's
        feature vector when the encoder has ``features``)."""
        embedded = self.item_embedding(item_ids)
        return embedded if self.features is None else embedded + self.features(item_ids)

    def forward(
        self,
        inputs: Tensor,
        padding: Tensor,
        attention: Attention,
        query_positions: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, L, D) of item embeddings ``inputs`` (B, L, D).

        ``padding`` (B, L) is True at padding columns; ``attention`` as in :func:`attention_mask`.
        With ``query_positions`` (B, L) bool, only the states there are returned, (N, D) in
        row-major order (as ``hidden[query_positions]``), and the last block computes no others.
        """
        width = inputs.shape[1]
        if width > self.max_len:
            raise ValueError(f"sequence width {width} exceeds the encoder's max_len {self.max_len}")
        positions = self.position_embedding.weight[self.max_len - width :]  # (L, D), newest last
        x = dropout(self.norm(inputs + positions), self.hidden_dropout, self.training)
        mask, is_causal = attention_mask(padding, attention)
        for block in self.blocks[:-1]:
            x = block(x, mask, is_causal)
        if query_positions is None:
            return self.blocks[-1](x, mask, is_causal)
        return self.blocks[-1].at_positions(x, mask, is_causal, query_positions)

    def two_stream(
        self,
        inputs: Tensor,
        padding: Tensor,
        attention: Tensor,
        query_positions: Tensor,
        query_input: Tensor,
    ) -> Tensor:
        """XLNet's query-stream states (N, D) at the True ``query_positions`` (B, L), row-major.

        Two-stream attention (Yang et al., NeurIPS 2019) through every block with the same
        weights. The content stream reads item embeddings ``inputs`` (B, L, D) and attends under
        ``attention`` (B, L, L) bool (True = may attend; padding and "each position sees itself"
        are added by :func:`attention_mask`, as for any explicit mask). The query stream exists at
        the query positions only; it attends to the content stream under the same permissions
        minus its own column, so it never sees its own content, only its position. It starts from
        ``query_input`` (D,) (XLNet's mask embedding) plus the position embedding of its column,
        through the same LayerNorm and dropout as the content stream. XLNet tells the query its
        position through relative attention; this encoder has learned absolute positions counted
        back from the newest item, so the query stream gets its column's position embedding.

        A query with no visible key (a one-item row whose item is the target) gets a zero
        attention output in every block, so it predicts from its position alone and is never
        NaN. The content stream of the last block is not computed: only the query stream is read.
        """
        batch, width = inputs.shape[:2]
        if width > self.max_len:
            raise ValueError(f"sequence width {width} exceeds the encoder's max_len {self.max_len}")
        positions = self.position_embedding.weight[self.max_len - width :]  # (L, D), newest last
        h = dropout(self.norm(inputs + positions), self.hidden_dropout, self.training)
        n_queries = int(query_positions.sum(dim=1).max()) if batch else 0
        columns, valid = target_order(query_positions, n_queries)  # (B, T), (B, T)
        g = query_input.to(inputs.dtype) + positions[columns]  # (B, T, D)
        g = dropout(self.norm(g), self.hidden_dropout, self.training)
        content_mask, _ = attention_mask(padding, attention)  # (B, 1, L, L)
        query_mask, has_key = _query_mask(content_mask, columns)  # (B, 1, T, L), (B, 1, T)
        for block in self.blocks[:-1]:
            h, g = block.two_stream(h, g, content_mask, query_mask, has_key)
        return self.blocks[-1].query_stream(h, g, query_mask, has_key)[valid]  # (N, D)


def _query_mask(content_mask: Tensor, columns: Tensor) -> tuple[Tensor, Tensor]:
    """Query-stream SDPA mask (B, 1, T, L) at ``columns`` (B, T) and which rows see a key.

    The content permissions of each query's column without the column itself (XLNet's query
    mask is its content mask minus the diagonal). Rows left with no key may see every column,
    so that softmax stays finite; callers zero their attention output (``has_key`` (B, 1, T)).
    """
    width = content_mask.shape[-1]
    rows = content_mask.gather(2, columns[:, None, :, None].expand(-1, 1, -1, width))
    own = torch.arange(width, device=columns.device) == columns[:, None, :, None]  # (B,1,T,L)
    rows = rows & ~own
    has_key = rows.any(dim=-1)  # (B, 1, T)
    return rows | ~has_key[..., None], has_key
