"""The losses a training can take, by name: contrastive (MNRL, GIST), and distillation from a teacher's scores
(DistillKLDivLoss, MarginMSELoss), alone or mixed with the contrastive one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from embtune_pipeline.lib.models import load_model

BATCH_KL = "batch_kl"  # listwise over the whole batch, from a bi-encoder teacher's vectors


@dataclass(frozen=True)
class Distillation:
    """How the teacher teaches: `loss` batch_kl (its vectors are the rows' label), kl or margin_mse (its scores
    are), `weight` its share of the total (the contrastive loss takes the rest), `temperature` the score scale
    of the kl losses, student's and teacher's."""

    loss: str = "kl"
    weight: float = 0.5
    temperature: float = 0.05


def distillation_loss(model, distillation: Distillation, contrastive):
    """The teacher's scores as the loss (mixed with `contrastive` unless the weight is 1). The student's score is
    the cosine, as at retrieval time."""
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.util import pairwise_cos_sim

    from embtune_pipeline.lib.training.mixed_loss import InBatchDistillKL, MixedLoss

    if distillation.loss == BATCH_KL:
        distill, scale = InBatchDistillKL(model, distillation.temperature), 1.0
    elif distillation.loss == "kl":
        distill = losses.DistillKLDivLoss(model, similarity_fct=pairwise_cos_sim, temperature=distillation.temperature)
        scale = 1.0 / distillation.temperature ** 2
    elif distillation.loss == "margin_mse":
        distill, scale = losses.MarginMSELoss(model, similarity_fct=pairwise_cos_sim), 1.0
    else:
        raise ValueError(f"unknown distillation loss {distillation.loss!r}: 'batch_kl', 'kl' or 'margin_mse'")
    return MixedLoss(model, distill, contrastive, distillation.weight, scale)


def contrastive_loss(model, name: str, mini_batch_size: int, guide_path, max_seq_length: int,
                     gather_across_devices: bool = False):
    """MultipleNegativesRankingLoss, or GISTEmbedLoss with the base model as guide (an in-batch candidate the
    base scores above the positive is treated as a likely positive, not a negative). mini_batch_size > 0 takes
    the cached (GradCache) variant: a large batch of negatives in the memory of a small one.
    gather_across_devices: in data-parallel training, every process's batch is a negative for every query."""
    from sentence_transformers.sentence_transformer import losses

    if name == "gist":
        guide = load_model(guide_path, max_seq_length=max_seq_length)
        if mini_batch_size:
            return losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=mini_batch_size,
                                             gather_across_devices=gather_across_devices)
        return losses.GISTEmbedLoss(model, guide, gather_across_devices=gather_across_devices)
    if name != "mnrl":
        raise ValueError(f"unknown loss {name!r}: 'mnrl' or 'gist'")
    if mini_batch_size:
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size,
                                                         gather_across_devices=gather_across_devices)
    return losses.MultipleNegativesRankingLoss(model, gather_across_devices=gather_across_devices)


def training_loss(model, name: str, mini_batch_size: int, guide_path, max_seq_length: int,
                  matryoshka_dims: tuple[int, ...] = (), gather_across_devices: bool = False,
                  distillation: Optional[Distillation] = None):
    """The contrastive loss, or with `distillation` (rows a teacher scored) the distillation loss mixed with it,
    wrapped in MatryoshkaLoss when dims are asked for (the full dim always among them, dims larger than the
    model's dropped). Mixed, the contrastive loss is the uncached one: both read one forward pass. GIST mixes
    as MNRL (GIST's guide needs a forward pass of its own; the teacher's scores already say which in-row
    candidates are positives)."""
    if distillation is not None:
        loss = distillation_loss(model, distillation, contrastive_loss(model, "mnrl", 0, guide_path, max_seq_length,
                                                                       gather_across_devices))
    else:
        loss = contrastive_loss(model, name, mini_batch_size, guide_path, max_seq_length, gather_across_devices)
    if not matryoshka_dims:
        return loss
    from sentence_transformers.sentence_transformer import losses

    full = model.get_embedding_dimension()
    dims = sorted({d for d in matryoshka_dims if 0 < d <= full} | {full}, reverse=True)
    return losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)
