"""Replacement token detection, ELECTRA-style (Clark et al., ICLR 2020).

A generator trained with masked language modeling proposes an item for every masked position; a
discriminator then reads the corrupted sequence and learns, at every item, whether it was
replaced. As in Transformers4Rec, generator and discriminator share the model's encoder: the
discriminator is one linear layer (owned by this objective) on the encoder's hidden states, and
the discriminator loss acts as an auxiliary task for the encoder. Prediction uses the generator
(masked language modeling) path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.objectives.base import ItemScorer, MaskingInfo, SequenceEncoder
from seqrec.objectives.mlm import MaskedLanguageModeling


class ReplacementLanguageModeling(MaskedLanguageModeling):
    """Masked language modeling plus a discriminator of replaced items.

    ``sample_from_batch`` draws replacements uniformly from the items present in the batch (so in
    proportion to their frequency there) instead of from the generator's softmax.
    ``discriminator_weight`` scales the discriminator loss (ELECTRA uses 50).
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
    ) -> None:
        super().__init__(
            n_items,
            hidden_size,
            mlm_probability,
            last_item_mask_prob,
            replacement,
            eval_on_last_item_seq_only,
        )
        if discriminator_weight < 0:
            raise ValueError(f"discriminator_weight must be >= 0, got {discriminator_weight}")
        self.sample_from_batch = sample_from_batch
        self.discriminator_weight = discriminator_weight
        self.discriminator = nn.Linear(hidden_size, 1)

    def training_loss(
        self,
        encoder: SequenceEncoder,
        scorer: ItemScorer,
        item_ids: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Generator (masked LM) loss + ``discriminator_weight`` x discriminator BCE."""
        info = self.compute_masked_targets(item_ids, training=True, generator=generator)
        hidden, targets = self.target_states(encoder, info)
        generator_loss = scorer.target_loss(hidden, targets, generator)
        corrupted = self.get_fake_tokens(item_ids, info, hidden.detach(), scorer, generator)
        states = self.encode(encoder, corrupted)  # (B, L, D), nothing masked
        real = corrupted != 0
        logits = self.discriminator(states[real]).squeeze(-1)  # (N_real,)
        labels = self.discriminator_labels(item_ids, corrupted)[real].float()
        return generator_loss + self.discriminator_weight * F.binary_cross_entropy_with_logits(
            logits, labels
        )

    @torch.no_grad()
    def get_fake_tokens(
        self,
        item_ids: Tensor,
        info: MaskingInfo,
        hidden: Tensor,
        scorer: ItemScorer,
        generator: torch.Generator | None,
    ) -> Tensor:
        """``item_ids`` with every target replaced by a sampled item: (B, L).

        ``hidden`` (N, D) are the generator's states at the targets, in ``info.schema`` order.
        A sample may equal the original item; it then counts as not replaced, as in ELECTRA.
        """
        if self.sample_from_batch:
            pool = item_ids[item_ids != 0]  # (P,) items of the batch, repeats included
            picks = torch.randint(
                0, pool.numel(), (hidden.shape[0],), generator=generator, device=item_ids.device
            )
            samples = pool[picks]
        else:
            probs = torch.softmax(scorer.score_items(hidden).float(), dim=-1)  # (N, n_items + 1)
            samples = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return item_ids.masked_scatter(info.schema, samples)

    @staticmethod
    def discriminator_labels(item_ids: Tensor, corrupted: Tensor) -> Tensor:
        """(B, L) bool: True where the corrupted sequence differs from the original."""
        return corrupted != item_ids
