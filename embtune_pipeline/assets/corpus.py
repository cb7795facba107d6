"""corpus -> corpus_sample."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import effective, optional_config, table_metadata, timed
from embtune_pipeline.lib.chunking import chunk_documents, snapshot_id
from embtune_pipeline.lib.errors import file_problem
from embtune_pipeline.lib.ingest import read_documents, settle_problems
from embtune_pipeline.lib.models import load_tokenizer
from embtune_pipeline.lib.sampling import stable_sample
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import SampleKnobs

SampleConfig = optional_config(SampleKnobs, "SampleConfig")


@dg.asset(group_name="corpus")
def corpus(settings: SettingsResource) -> dg.Output[pd.DataFrame]:
    """Every document, normalized and chunked (token-aware, overlapping), exact duplicates collapsed, one content
    hash per chunk. The data version is the snapshot id: the hash of all chunk hashes."""
    s = settings.get()
    c = s.corpus
    meta: dict = {}
    with timed(meta):
        docs, problems = read_documents(c.path, c.format, c.id_col, c.title_column, c.text_column, c.modules)
        quarantined = settle_problems(problems, c.bad_rows, s.layout.quarantine("corpus"))
        if docs.empty:
            raise file_problem(c.path or c.format, "the corpus has no usable document")
        tokenizer = load_tokenizer(c.tokenizer or s.base_model)
        chunks, duplicates = chunk_documents(docs, tokenizer, c.chunk_tokens, c.chunk_overlap)
    snapshot = snapshot_id(chunks["chunk_hash"])
    meta.update({
        "snapshot_id": snapshot,
        "documents": len(docs),
        "chunks": len(chunks),
        "duplicate_chunks_collapsed": duplicates,
        "quarantined_rows": quarantined,
        "source": str(c.path or c.format),
        **table_metadata(chunks),
    })
    if quarantined:
        meta["quarantine_file"] = dg.MetadataValue.path(str(s.layout.quarantine("corpus")))
    return dg.Output(chunks, metadata=meta, data_version=dg.DataVersion(snapshot))


@dg.asset(group_name="corpus")
def corpus_sample(config: SampleConfig, settings: SettingsResource, corpus: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """A seeded sample of chunks to generate queries for; stable across snapshots (a chunk keeps its place)."""
    knobs = effective(settings.get().run.sample, config)
    meta: dict = {}
    with timed(meta):
        sample = stable_sample(corpus, knobs.sample_size, knobs.seed)
    return dg.Output(sample, metadata={**meta, "sample_size": knobs.sample_size, "seed": knobs.seed,
                                       "of_chunks": len(corpus), **table_metadata(sample)})
