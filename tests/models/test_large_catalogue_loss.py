"""At Beauty's 54,542 items, full-softmax training takes the chunked path on its own, and its loss
and gradients are the dense ones."""

from __future__ import annotations

import pytest
import torch

from seqrec import losses
from seqrec.batch import SequenceBatch
from seqrec.models import build_model

N_ITEMS = 54_542  # Amazon Beauty as in the BERT4Rec paper
CONFIGS = {
    "sasrec": {"loss": "ce", "hidden_size": 8, "n_heads": 1, "n_layers": 1},
    "bert4rec": {"hidden_size": 8, "n_heads": 1, "n_layers": 1},
    "gru4rec": {"embedding_size": 8, "hidden_size": 8},
}
ROWS = {"sasrec": 32, "bert4rec": 160, "gru4rec": 32}  # > MAX_LOGITS / N_ITEMS = 1,230 targets


def loss_and_table_grad(name: str, max_logits: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(name, n_items=N_ITEMS, max_len=50, max_logits=max_logits, **CONFIGS[name])
    gen = torch.Generator().manual_seed(1)
    batch = SequenceBatch(
        torch.randint(1, N_ITEMS + 1, (ROWS[name], model.train_seq_len), generator=gen)
    )
    loss = model.calculate_loss(batch, torch.Generator().manual_seed(2))
    table = model.item_embedding if name == "gru4rec" else model.encoder.item_embedding
    (grad,) = torch.autograd.grad(loss, table.weight)
    return loss.detach(), grad


@pytest.mark.parametrize("name", list(CONFIGS))
def test_full_softmax_at_beauty_size_is_chunked_and_equals_the_dense_one(name, monkeypatch) -> None:
    calls = []
    apply = losses._ChunkedSoftmaxCE.apply

    def spy(hidden, weight, *rest):
        calls.append((hidden.shape[0], weight.shape[0]))
        return apply(hidden, weight, *rest)

    monkeypatch.setattr(losses._ChunkedSoftmaxCE, "apply", spy)
    chunked_loss, chunked_grad = loss_and_table_grad(name, losses.MAX_LOGITS)
    assert len(calls) == 1 and calls[0][1] == N_ITEMS
    assert calls[0][0] * N_ITEMS > losses.MAX_LOGITS  # the default threshold chose the chunks
    dense_loss, dense_grad = loss_and_table_grad(name, 2**40)
    assert len(calls) == 1  # the dense run did not chunk
    torch.testing.assert_close(chunked_loss, dense_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked_grad, dense_grad, rtol=1e-4, atol=1e-7)
