"""The teacher (settings `teacher:`) as a Dagster resource: the stronger model whose scores the base learns from.
A deployment that reaches its provider otherwise swaps this resource."""

from __future__ import annotations

from typing import Optional

import dagster as dg

from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.settings import SettingsResource


class TeacherModel(dg.ConfigurableResource):
    settings: SettingsResource

    @property
    def configured(self) -> bool:
        return self.settings.get().teacher is not None

    def scorer(self, embeddings: EmbeddingCache, reporter=None):
        """lib.training.teacher.BudgetedTeacher over the settings' teacher (None without one): its vectors in the
        embedding cache (an API's under its model and params, a local model's under its fingerprint), a
        cross-encoder's scores in data_dir/cache/teacher_scores.sqlite, every call priced against
        teacher.budget_usd."""
        from embtune_pipeline.lib.models import model_fingerprint
        from embtune_pipeline.lib.progress import SILENT
        from embtune_pipeline.lib.queries.cache import AnswerCache
        from embtune_pipeline.lib.training.teacher import BudgetedTeacher, build_teacher

        s = self.settings.get()
        if s.teacher is None:
            return None
        embed = s.run.embed
        teacher = build_teacher(s.teacher, embeddings.store,
                                lambda path: embeddings.for_model(path, embed.max_seq_length),
                                lambda: AnswerCache(s.layout.teacher_scores), model_fingerprint,
                                embed.max_seq_length, embed.batch_size, embed.backend)
        return BudgetedTeacher(teacher, s.teacher.budget_usd, reporter or SILENT)

    def training_rows(self, embeddings: EmbeddingCache, rows, distill_loss: str):
        """The rows the trainer reads: with the teacher's vectors of each row (batch_kl's label) when that loss
        distils a bi-encoder teacher; as they are otherwise. The vectors come from the embedding cache, where
        hard_negatives put them."""
        from embtune_pipeline.lib.training.data import TEACHER_VECTORS, is_distilled, text_columns
        from embtune_pipeline.lib.training.losses import BATCH_KL

        if distill_loss != BATCH_KL or not is_distilled(rows) or (scorer := self.scorer(embeddings)) is None:
            return rows
        vectors = scorer.row_vectors(rows["anchor"].tolist(), [rows[c].tolist() for c in text_columns(rows)[1:]])
        return rows if vectors is None else rows.assign(**{TEACHER_VECTORS: list(vectors)})

    def guide_path(self) -> Optional[str]:
        """GIST's guide when the teacher is a local bi-encoder (None: the base guides)."""
        t = self.settings.get().teacher
        return t.model if t is not None and t.is_local and not t.is_cross_encoder else None
