"""The contrastive losses a training can take, by name."""

from __future__ import annotations

from embtune_pipeline.lib.models import load_model


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
                  matryoshka_dims: tuple[int, ...] = (), gather_across_devices: bool = False):
    """The contrastive loss, wrapped in MatryoshkaLoss when dims are asked for (the full dim always among them,
    dims larger than the model's dropped)."""
    loss = contrastive_loss(model, name, mini_batch_size, guide_path, max_seq_length, gather_across_devices)
    if not matryoshka_dims:
        return loss
    from sentence_transformers.sentence_transformer import losses

    full = model.get_sentence_embedding_dimension()
    dims = sorted({d for d in matryoshka_dims if 0 < d <= full} | {full}, reverse=True)
    return losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)
