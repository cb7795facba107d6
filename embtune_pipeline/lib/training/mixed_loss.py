"""Two sentence-transformers losses from one forward pass (its own module: it imports torch)."""

from __future__ import annotations

from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import nn


class MixedLoss(nn.Module):
    """weight x distillation + (1 - weight) x contrastive, from one forward pass: both losses read the same
    embeddings (sentence-transformers' compute_loss_from_embeddings). The kl term is taken without
    sentence-transformers' temperature-squared factor, so at temperature 0.05 it weighs like the contrastive
    cross-entropy at its scale of 20."""

    def __init__(self, model, distill, contrastive, weight: float, distill_scale: float = 1.0):
        super().__init__()
        self.model, self.distill, self.contrastive = model, distill, contrastive
        self.weight, self.distill_scale = weight, distill_scale

    def forward(self, sentence_features, labels):
        embeddings = embed_columns(self.model, sentence_features)
        total = 0.0
        if self.weight > 0:
            total = self.weight * self.distill_scale * self.distill.compute_loss_from_embeddings(embeddings, labels)
        if self.weight < 1:
            total = total + (1 - self.weight) * self.contrastive.compute_loss_from_embeddings(embeddings, labels)
        return total
