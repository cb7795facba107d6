"""The corpus source as a Dagster resource: where documents are read from, how bad rows are settled, and how
documents become chunks. A deployment reading its corpus from elsewhere swaps this resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from embtune_pipeline.resources.settings import SettingsResource


class CorpusSource(dg.ConfigurableResource):
    """The settings file's `corpus:` section: files (jsonl, parquet, csv, a directory, BEIR) or python-docs."""

    settings: SettingsResource

    def read_current(self) -> tuple[pd.DataFrame, int]:
        """The documents as the source holds them now, and how many rows were quarantined; bad rows fail or go
        to quarantine, as corpus.bad_rows says."""
        from embtune_pipeline.lib.data.ingest import read_documents, settle_problems
        from embtune_pipeline.lib.data.snapshots import snapshot_key
        from embtune_pipeline.lib.errors import file_problem

        c = self.settings.get().corpus
        docs, problems = read_documents(c.path, c.format, c.id_col, c.title_column, c.text_column, c.modules,
                                        c.max_document_chars)
        quarantine = self.quarantine_file(snapshot_key(docs)) if problems else None
        quarantined = settle_problems(problems, c.bad_rows, quarantine)
        if docs.empty:
            raise file_problem(c.path or c.format, "the corpus has no usable document")
        return docs, quarantined

    @property
    def name(self) -> str:
        """Where the documents come from, as snapshots record it."""
        c = self.settings.get().corpus
        return str(c.path or c.format)

    def snapshots(self):
        """The frozen snapshots of this corpus, one per registered content."""
        from embtune_pipeline.lib.data.snapshots import SnapshotStore

        return SnapshotStore(self.settings.get().layout.snapshot, self.quarantine_file)

    def quarantine_file(self, snapshot: str) -> Path:
        """Where the rows set aside by reading the corpus as `snapshot` are: one file per snapshot, so reading
        another snapshot never drops them."""
        return self.settings.get().layout.quarantine("corpus", snapshot)

    def register_current(self):
        """Freeze the documents as they are now (a snapshot keyed by their content) and return it."""
        docs, quarantined = self.read_current()
        return self.snapshots().register(docs, quarantined, source=self.name)

    def chunk(self, docs: pd.DataFrame, base_model: str) -> tuple[pd.DataFrame, int]:
        """Chunks of `docs` with the base model's tokenizer (or corpus.tokenizer), as corpus.chunk_tokens and
        chunk_overlap ask; returns the chunks and the number of duplicate chunks collapsed."""
        from embtune_pipeline.lib.data.chunking import chunk_documents
        from embtune_pipeline.lib.models import load_tokenizer

        c = self.settings.get().corpus
        return chunk_documents(docs, load_tokenizer(c.tokenizer_of(base_model)), c.chunk_tokens, c.chunk_overlap)
