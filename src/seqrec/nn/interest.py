"""DIN's target attention and DIEN's interest layers, for left-padded behaviour sequences.

- ``SequenceAttLayer``: how relevant each history position is to a target item, from an MLP over
  ``[q, k, q - k, q * k]`` (DIN's activation unit), padding masked before any softmax.
- ``InterestExtractorNetwork``: a GRU over the behaviour sequence, and DIEN's auxiliary loss
  that asks each interest state to tell the next clicked item from a sampled non-clicked one.
- ``InterestEvolvingLayer``: attention of the target item over the interest states, then one of
  GRU (attention pooling of GRU states), AIGRU, AGRU or AUGRU; the result is each user's last
  real state (``final_output``).

Sequences are left-padded (the newest item in the last column, 0 = padding), so "the real
positions" of a row are its last ``keys_length`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.nn.mlp import MLP, activation_layer
from seqrec.nn.rnn import GRU_TYPES, DynamicRNN, real_mask

# (history position, candidate) pairs scored per pass: the MLP's (pairs, 80) activations of 4,096
# pairs stay in the core's cache through the adds and sigmoids; at 2^17 pairs (42 MB a tensor)
# each elementwise pass streams from memory, and a full ranking of DIN took 2.5x longer
MAX_ATTENTION_ROWS = 1 << 12


class SequenceAttLayer(nn.Module):
    """Attention weights (B, C, T) of C target items (queries) over T history positions (keys).

    The score of key ``k`` for query ``q`` is ``MLP([q, k, q - k, q * k])`` (hidden sizes
    ``att_hidden_size``, activation after each hidden layer, one output). Scores are computed at
    real positions only. ``softmax_stag=True`` masks padding with the lowest float and
    normalises over the history, so the weights of a row's real positions sum to 1 and padding
    gets exactly 0 (a row without real positions gets all zeros, never NaN). ``softmax_stag=False``
    keeps the raw scores, 0 at padding (DIN's paper keeps the intensity of interest this way).

    Differences: RecBole and the DIN authors' code divide the scores by ``sqrt(embedding_size)``
    and the DIEN authors' code does not; here they are not divided. The first Linear is applied
    to the four parts separately (``(W_q + W_d) q + (W_k - W_d) k + W_p (q * k)``), which equals
    the Linear of the concatenation but costs one product per (query, key) pair instead of four.
    """

    def __init__(
        self,
        embedding_size: int,
        att_hidden_size: Sequence[int] = (80, 40),
        activation: str = "sigmoid",
        softmax_stag: bool = True,
    ) -> None:
        super().__init__()
        if not att_hidden_size:
            raise ValueError("att_hidden_size needs at least one layer")
        self.embedding_size, self.softmax_stag = embedding_size, softmax_stag
        first = att_hidden_size[0]
        self.first = nn.Linear(4 * embedding_size, first)  # over [q, k, q - k, q * k]
        self.first_activation = activation_layer(activation, first)
        self.rest = MLP(first, att_hidden_size[1:], 1, activation)

    def forward(self, queries: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """``queries`` (B, C, D) or (B, D), ``keys`` (B, T, D), ``mask`` (B, T) True = real.

        Returns (B, C, T), or (B, T) for (B, D) queries.
        """
        single = queries.dim() == 2
        queries = queries.unsqueeze(1) if single else queries  # (B, C, D)
        scores = self.scores(queries, keys, mask)  # (B, C, T)
        real = mask.unsqueeze(1)  # (B, 1, T)
        if self.softmax_stag:
            lowest = torch.finfo(scores.dtype).min
            weights = torch.softmax(scores.masked_fill(~real, lowest), dim=-1)
            scores = weights * real  # an all-padding row: uniform weights, zeroed here
        else:
            scores = scores.masked_fill(~real, 0.0)
        return scores[:, 0] if single else scores

    def scores(self, queries: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """Raw MLP scores (B, C, T) at real positions; padding positions hold 0."""
        w_q, w_k, w_d, w_p = self.first.weight.split(self.embedding_size, dim=1)
        q_part = F.linear(queries, w_q + w_d, self.first.bias)  # (B, C, H1)
        k_part = F.linear(keys, w_k - w_d)  # (B, T, H1)
        batch, width = mask.shape
        flat = mask.flatten().nonzero().flatten()  # (N,) real positions b * T + t
        row = flat // width  # (N,) their b
        keys, k_part = keys.flatten(0, 1), k_part.flatten(0, 1)  # (B*T, D), (B*T, H1)
        step = max(1, MAX_ATTENTION_ROWS // max(queries.shape[1], 1))
        pieces = []
        for start in range(0, len(flat), step):
            # index_select rather than advanced indexing: its backward is a fast index_add
            f, b = flat[start : start + step], row[start : start + step]
            key = keys.index_select(0, f).unsqueeze(1)  # (n, 1, D)
            qk = F.linear(queries.index_select(0, b) * key, w_p)  # (n, C, H1)
            hidden = q_part.index_select(0, b) + k_part.index_select(0, f).unsqueeze(1) + qk
            pieces.append(self.rest(self.first_activation(hidden)).squeeze(-1))  # (n, C)
        out = queries.new_zeros(batch * width, queries.shape[1])
        if pieces:
            out = out.index_copy(0, flat, torch.cat(pieces))  # (B*T, C), 0 at padding
        return out.view(batch, width, -1).transpose(1, 2)  # (B, C, T)


class InterestExtractorNetwork(nn.Module):
    """GRU over the behaviour embeddings (interest states), and DIEN's auxiliary loss.

    The auxiliary network is an MLP over ``[h_t, e]`` (hidden sizes ``aux_hidden_size``) giving a
    click logit. Differences: the DIEN authors' network is BatchNorm, 100 and 50 sigmoid units
    and a two-way softmax (a logit is the same model); RecBole's has no activations between its
    layers.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        aux_hidden_size: Sequence[int] = (100, 50),
        aux_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.gru = DynamicRNN(input_size, hidden_size, "GRU")
        self.auxiliary_net = MLP(hidden_size + input_size, aux_hidden_size, 1, aux_activation)

    def forward(
        self, keys: Tensor, keys_length: Tensor, neg_keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Interest states (B, T, H), 0 at padding, and the auxiliary loss if ``neg_keys``.

        ``keys`` (B, T, D) are the clicked items' embeddings, ``neg_keys`` (B, T, D) one
        non-clicked item aligned with each position. State ``t`` is scored against the item
        clicked at ``t + 1`` and the non-clicked item of ``t + 1``: ``keys_length - 1`` pairs.
        """
        states, _ = self.gru(keys, keys_length)
        if neg_keys is None:
            return states, None
        pairs = (keys_length - 1).clamp(min=0)
        aux = self.auxiliary_loss(states[:, :-1], keys[:, 1:], neg_keys[:, 1:], pairs)
        return states, aux

    def auxiliary_loss(
        self, h_states: Tensor, click_seq: Tensor, noclick_seq: Tensor, keys_length: Tensor
    ) -> Tensor:
        """``mean over real positions of [-log s(h_t, click_t) - log(1 - s(h_t, noclick_t))]``.

        All inputs are left-padded (B, T, .); the last ``keys_length`` columns of a row are real
        and nothing else is read, so padding can hold anything. 0 if no position is real.
        Differences: the paper sums over positions and averages over users; RecBole averages
        over the 2N terms (half of this value); the authors' code averages over every position,
        padding included.
        """
        mask = real_mask(keys_length, h_states.shape[1])  # (B, T)
        n = int(mask.sum())
        if n == 0:
            return h_states.new_zeros(())
        states = h_states[mask]  # (N, H)
        inputs = torch.cat(
            [
                torch.cat([states, click_seq[mask]], -1),
                torch.cat([states, noclick_seq[mask]], -1),
            ]
        )  # (2N, H + D)
        logits = self.auxiliary_net(inputs).squeeze(-1)  # (2N,)
        return (F.softplus(-logits[:n]).sum() + F.softplus(logits[n:]).sum()) / n


class InterestEvolvingLayer(nn.Module):
    """The interest relevant to each target item, evolved over the interest states: (B, C, H).

    ``gru``: ``"GRU"`` pools GRU states over the interests with the target attention (no
    attention inside the recurrence); ``"AIGRU"`` runs a GRU over the attention-scaled interests;
    ``"AGRU"``/``"AUGRU"`` put the attention into the recurrence (``seqrec.nn.rnn``). The
    attention needs queries and keys of one size, so ``input_size`` is both the item and the
    interest size (as in RecBole). With ``softmax_stag`` the scores of a long history are small
    (they sum to 1), so the paper's AGRU/AUGRU, which keep the state at score 0, move little per
    step; the DIEN authors' cell takes a plain GRU step at score 0 (see ``seqrec.nn.rnn``).
    """

    def __init__(
        self,
        input_size: int,
        att_hidden_size: Sequence[int] = (80, 40),
        activation: str = "sigmoid",
        softmax_stag: bool = True,
        gru: str = "AUGRU",
    ) -> None:
        super().__init__()
        if gru not in GRU_TYPES:
            raise ValueError(f"gru must be one of {', '.join(GRU_TYPES)}, got {gru!r}")
        self.gru = gru
        self.attention_layer = SequenceAttLayer(
            input_size, att_hidden_size, activation, softmax_stag
        )
        self.dynamic_rnn = DynamicRNN(input_size, input_size, gru)

    def forward(self, queries: Tensor, keys: Tensor, keys_length: Tensor) -> Tensor:
        """``queries`` (B, C, D) target items, ``keys`` (B, T, D) interest states -> (B, C, D)."""
        mask = real_mask(keys_length, keys.shape[1])  # (B, T)
        if self.gru == "GRU":
            states, _ = self.dynamic_rnn(keys, keys_length)  # (B, T, D)
            weights = self.attention_layer(queries, states, mask)  # (B, C, T)
            return weights @ states  # (B, C, D)
        weights = self.attention_layer(queries, keys, mask)  # (B, C, T)
        outputs, _ = self.dynamic_rnn(keys, keys_length, weights)  # (B, C, T, D)
        return self.final_output(outputs, keys_length)

    @staticmethod
    def final_output(outputs: Tensor, keys_length: Tensor) -> Tensor:
        """Each row's state after its last real step: the newest column (..., T, D) -> (..., D).

        With left padding that column is real whenever the row has a real step; states at
        padding are 0, so a row without history gets 0.
        """
        return outputs[..., -1, :]
