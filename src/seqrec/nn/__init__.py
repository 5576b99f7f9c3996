"""Reusable layers: the transformer encoder shared by the sequence models."""

from seqrec.nn.transformer import Attention, TransformerEncoder, attention_mask

__all__ = ["Attention", "TransformerEncoder", "attention_mask"]
