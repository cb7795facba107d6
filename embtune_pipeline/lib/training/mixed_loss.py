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


class InBatchDistillKL(nn.Module):
    """Listwise distillation over the whole batch: for each query, the KL divergence between the teacher's and
    the student's softmax over every passage in the batch (each row's positive and negatives), so one row
    teaches its query's ranking of 32-odd candidates instead of two, at no cost in encoding. The teacher is a
    bi-encoder whose vectors of [anchor, positive, negative_1..n] are each row's label, flattened. Both score
    by cosine over `temperature`."""

    def __init__(self, model, temperature: float = 0.05):
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, sentence_features, labels):
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings, labels):
        import torch
        import torch.nn.functional as F

        columns, rows = len(embeddings), embeddings[0].size(0)
        teacher = F.normalize(labels.detach().float().view(rows, columns, -1), dim=-1)
        teacher_scores = teacher[:, 0] @ torch.cat([teacher[:, j] for j in range(1, columns)]).T
        student = F.normalize(embeddings[0], dim=-1) @ F.normalize(torch.cat(embeddings[1:]), dim=-1).T
        return F.kl_div(F.log_softmax(student / self.temperature, dim=1),
                        F.softmax(teacher_scores / self.temperature, dim=1), reduction="batchmean")
