"""One LightningModule for every model: it only calls ``model.calculate_loss(batch, generator)``.

The training generator (masking, negative sampling inside the loss) and the global torch RNG
(dropout) are saved in every checkpoint and restored on resume, together with the optimizer and
scheduler Lightning already keeps, so a resumed run ends on the weights an uninterrupted one has.
Under data parallelism each process draws from its own generator and global RNG (seeded from
the seed and its rank: the processes' masks, negatives and dropout differ), and the checkpoint
keeps every process's states; the epoch's loss is the mean over every process's steps.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.config import TrainingConfig
from seqrec.evaluation.distributed import all_gather

_NORMS = (nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d, nn.GroupNorm)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weights only, none on biases and normalisation layers."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(module, _NORMS) or name.endswith("bias"):
                no_decay.append(param)
            else:
                decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def rank_seed(seed: int, rank: int) -> int:
    """The random seed of process ``rank``; rank 0 (and one process) keep ``seed``.

    Distinct for every rank within 32 bits: torch's CPU generator (mt19937) reads only the low 32
    bits of a seed, so ``seed + (rank << 32)`` would give every process the same numbers.
    """
    return (seed + rank * 0x9E3779B1) % 2**32  # an odd factor: one seed per rank


def warmup_linear_decay(warmup_steps: int, total_steps: int):
    """LR factor: linear rise over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        remaining = total_steps - step
        return max(remaining, 0) / max(total_steps - warmup_steps, 1)

    return factor


class SeqRecModule(L.LightningModule):
    """Wraps a plain ``nn.Module`` that follows ``SequentialRecommender``; knows nothing of models.

    ``total_steps`` (optimizer steps over all epochs) sets the length of the linear decay.
    """

    def __init__(self, model: nn.Module, training: TrainingConfig, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.training_config = training
        self.total_steps = total_steps
        self._generator: torch.Generator | None = None
        self._pending_generator_state: Tensor | None = None
        self._loss_sum = torch.zeros(())
        self._loss_steps = 0

    @property
    def generator(self) -> torch.Generator:
        """Created on the model's device at first use; restored from a checkpoint if resuming."""
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device)
            self._generator.manual_seed(rank_seed(self.training_config.seed, self.global_rank))
            if self._pending_generator_state is not None:
                self._generator.set_state(self._pending_generator_state)
                self._pending_generator_state = None
        return self._generator

    def setup(self, stage: str) -> None:
        """Another process draws other dropout masks: its global RNG is seeded from its rank.

        Rank 0 (and one process) keeps the state the run was seeded with. Before a checkpoint is
        restored, so a resumed process continues its own saved state.
        """
        if self.global_rank > 0:
            torch.manual_seed(rank_seed(self.training_config.seed, self.global_rank))

    def on_train_epoch_start(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._loss_steps = 0

    def training_step(self, batch: SequenceBatch, batch_idx: int) -> Tensor:
        loss = self.model.calculate_loss(batch, self.generator)
        # accumulated without a host sync and logged once per epoch: self.log on every step
        # costs milliseconds of bookkeeping, several percent of a small model's step
        self._loss_sum.add_(loss.detach())
        self._loss_steps += 1
        return loss

    def on_train_epoch_end(self) -> None:
        # equal on every process already (epoch_loss sums over them): the sync changes nothing
        # and keeps Lightning from warning that it is missing
        self.log("train_loss", self.epoch_loss(), prog_bar=True, sync_dist=True)

    def epoch_loss(self) -> float:
        """Mean training loss of the current epoch so far over every process's steps.

        One host sync; under data parallelism every process must call it (a sum over them).
        """
        steps = torch.tensor(float(self._loss_steps), device=self._loss_sum.device)
        total, count = self.trainer.strategy.reduce(
            torch.stack([self._loss_sum, steps]), reduce_op="sum"
        ).tolist()
        return total / max(count, 1.0)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.training_config
        groups = parameter_groups(self.model, cfg.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        schedule = warmup_linear_decay(cfg.warmup_steps, self.total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every process's random states (rank 0 writes the file); all processes call this."""
        states = {
            "generator": self.generator.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        checkpoint["seqrec_rng"] = {"ranks": all_gather(states)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint["seqrec_rng"]
        states = saved["ranks"][self.global_rank] if "ranks" in saved else saved  # older files
        self._generator = None
        self._pending_generator_state = states["generator"]
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
