"""Replacement token detection as in ELECTRA (Clark et al., ICLR 2020) and Transformers4Rec.

A generator trained with masked language modeling proposes an item for every masked position,
sampled from its own softmax; a discriminator reads the corrupted sequence and learns, at every
item, whether it was replaced. As in Transformers4Rec's tied configuration, generator and
discriminator share the model's encoder: the generator is the model's masked-LM output layer, the
discriminator is ELECTRA's head (dense, GELU, one logit) on the encoder's states of the corrupted
sequence, and the discriminator loss trains the shared encoder as an auxiliary task. Sampling runs
without gradients, so the discriminator loss never reaches the generator through the samples
(ELECTRA). Prediction uses the generator (masked LM) path.

Where replacements come from (``sample_from_batch``):

- ``False``: the generator's softmax over the catalogue, items ``1..n_items`` (never padding or
  the mask token);
- ``True``: the generator's softmax over the batch's masked labels, one column per target with
  repeats (Transformers4Rec's ``logits_all[:, labels_all]``): the logits are the generator's
  scores of those items, and the sampled column maps back to its item.

Samples are drawn by the gumbel-max trick with the caller's ``torch.Generator``
(:meth:`ReplacementLanguageModeling.sample_from_softmax`). A sample equal to the original item
counts as not replaced, as in ELECTRA. Differences from ELECTRA: one shared encoder instead of a
smaller separate generator network; the masking is BERT4Rec's (a fixed count per row).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.objectives.base import ItemScorer, SequenceEncoder
from seqrec.objectives.mlm import MaskedLanguageModeling

# sampling logits are computed for at most this many (row, candidate) pairs at once (128 MiB)
MAX_SAMPLING_LOGITS = 2**25


class CandidateScorer(ItemScorer, Protocol):
    """An output layer that can also score a given set of items (for ``sample_from_batch``)."""

    def score_candidates(self, hidden: Tensor, items: Tensor) -> Tensor:
        """Scores (N, C) of hidden states (N, D) against the same item codes ``items`` (C,)."""
        ...


class ReplacementLanguageModeling(MaskedLanguageModeling):
    """Masked language modeling (the generator) plus a discriminator of replaced items.

    ``sample_from_batch`` samples replacements from the generator's softmax over the batch's
    masked labels instead of over the catalogue. ``discriminator_weight`` scales the
    discriminator loss (ELECTRA's 50); the generator loss has weight 1.
    """

    name = "rtd"

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        mlm_probability: float = 0.2,
        last_item_mask_prob: float = 0.0,
        replacement: str = "mask",
        sample_from_batch: bool = False,
        discriminator_weight: float = 50.0,
        eval_on_last_item_seq_only: bool = True,
        padding_idx: int = 0,
        max_predictions: int | None = None,
    ) -> None:
        super().__init__(
            n_items,
            hidden_size,
            mlm_probability,
            last_item_mask_prob,
            replacement,
            eval_on_last_item_seq_only,
            padding_idx,
            max_predictions,
        )
        if discriminator_weight < 0:
            raise ValueError(f"discriminator_weight must be >= 0, got {discriminator_weight}")
        self.sample_from_batch = sample_from_batch
        self.discriminator_weight = discriminator_weight
        self.discriminator = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, 1)
        )

    def training_loss(
        self,
        encoder: SequenceEncoder,
        scorer: CandidateScorer,
        item_ids: Tensor,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> Tensor:
        """Generator (masked LM) loss + ``discriminator_weight`` x discriminator BCE."""
        info = self.compute_masked_targets(item_ids, True, generator, last_item_rows)
        hidden, targets = self.target_states(encoder, info)
        generator_loss = scorer.target_loss(hidden, targets, generator)
        updates, _ = self.sample_replacements(hidden.detach(), targets, scorer, generator)
        corrupted, labels = self.corrupt(item_ids, info.targets.flatten(), updates)
        return generator_loss + self.discriminator_weight * self.discriminator_loss(
            encoder, corrupted, labels
        )

    def discriminator_loss(
        self, encoder: SequenceEncoder, corrupted: Tensor, labels: Tensor
    ) -> Tensor:
        """Mean BCE of the discriminator over the real items of ``corrupted`` (B, L).

        ``labels`` (B, L) bool is True where an item was replaced.
        """
        real = corrupted != self.padding_idx  # (B, L)
        states = self.encode(encoder, corrupted, None, real)  # (N_real, D), nothing masked
        logits = self.discriminator(states).squeeze(-1)  # (N_real,)
        return F.binary_cross_entropy_with_logits(logits, labels[real].to(logits.dtype))

    @torch.no_grad()
    def sample_replacements(
        self,
        hidden: Tensor,
        targets: Tensor,
        scorer: CandidateScorer,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Replacement items (N,) drawn from the generator's softmax at its states ``hidden``.

        ``hidden`` (N, D) are the generator's states at the targets ``targets`` (N,). With
        ``sample_from_batch`` also the sampled column (N,) among the targets, else None. The
        logits are computed for a block of rows at a time, so memory stays bounded.
        """
        width = targets.shape[0] if self.sample_from_batch else self.n_items + 1
        rows = max(1, MAX_SAMPLING_LOGITS // max(width, 1))
        blocks = [
            self.sample_from_softmax(self._logits(hidden[i : i + rows], targets, scorer), generator)
            for i in range(0, hidden.shape[0], rows)
        ]
        picks = torch.cat(blocks) if blocks else targets.new_zeros(0)  # (N,)
        if self.sample_from_batch:
            return targets[picks], picks
        return picks, None

    def _logits(self, hidden: Tensor, targets: Tensor, scorer: CandidateScorer) -> Tensor:
        """The generator's logits (n, C) over what may be sampled, in float32."""
        if self.sample_from_batch:
            return scorer.score_candidates(hidden, targets).float()  # (n, N)
        return self._without_padding(scorer.score_items(hidden).float())  # (n, n_items + 1)

    def _without_padding(self, logits: Tensor) -> Tensor:
        """Catalogue logits (n, n_items + 1) with the padding column made impossible."""
        if logits.shape[1] != self.n_items + 1:
            raise ValueError(
                f"catalogue logits must have n_items + 1 = {self.n_items + 1} columns (item codes "
                f"0..n_items), got {logits.shape[1]}"
            )
        return logits.index_fill(
            1, torch.tensor([self.padding_idx], device=logits.device), -torch.inf
        )

    @staticmethod
    def sample_from_softmax(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One column per row of ``logits`` (N, C) drawn from ``softmax(logits)``: (N,) int64.

        The gumbel-max trick (as in ELECTRA and Transformers4Rec): the argmax of the logits plus
        independent Gumbel(0, 1) noise ``-log(-log(U))`` is distributed as the softmax. ``U`` comes
        from ``generator``; a ``-inf`` logit is never drawn.
        """
        uniform = torch.rand(
            logits.shape, generator=generator, device=logits.device, dtype=logits.dtype
        )
        gumbel = -torch.log(-torch.log(uniform))  # U = 0 gives -inf: never drawn
        return (logits + gumbel).argmax(dim=-1)

    def get_fake_tokens(
        self,
        itemid_seq: Tensor,
        target_flat: Tensor,
        logits: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Transformers4Rec's corruption: corrupted inputs, discriminator labels, batch updates.

        ``itemid_seq`` (B, L) are the original items, ``target_flat`` (B * L,) the flattened
        masked labels (padding where nothing is masked), ``logits`` the generator's logits at the
        masked positions, in ``target_flat`` order: (N, n_items + 1) over the catalogue, or with
        ``sample_from_batch`` (N, N) over the masked labels themselves. Returns the items with
        every masked position replaced by a sample (B, L), True where the sample differs from the
        original (B, L), and the sampled columns among the masked labels (N,) (empty when sampling
        from the catalogue).
        """
        n_targets = int((target_flat != self.padding_idx).sum())
        if self.sample_from_batch:
            if logits.shape != (n_targets, n_targets):
                raise ValueError(
                    f"with sample_from_batch, logits must be ({n_targets}, {n_targets}) over the "
                    f"masked labels, got {tuple(logits.shape)}"
                )
            batch_updates = self.sample_from_softmax(logits, generator)  # (N,)
            updates = target_flat[target_flat != self.padding_idx][batch_updates]
        else:
            updates = self.sample_from_softmax(self._without_padding(logits), generator)
            batch_updates = updates.new_zeros(0)
        corrupted, labels = self.corrupt(itemid_seq, target_flat, updates)
        return corrupted, labels, batch_updates

    def corrupt(
        self, itemid_seq: Tensor, target_flat: Tensor, updates: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``itemid_seq`` (B, L) with its masked positions set to ``updates`` (N,), row-major.

        Also the discriminator labels (B, L): True exactly where the item changed.
        """
        masked = (target_flat != self.padding_idx).view(itemid_seq.shape)  # (B, L)
        corrupted = itemid_seq.masked_scatter(masked, updates.to(itemid_seq.dtype))
        return corrupted, corrupted != itemid_seq
