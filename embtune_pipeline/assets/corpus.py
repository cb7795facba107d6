"""corpus -> corpus_sample."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import effective, optional_config, table_metadata, timed
from embtune_pipeline.lib.data.chunking import snapshot_id
from embtune_pipeline.lib.data.sampling import stable_sample
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import SampleKnobs

SampleConfig = optional_config(SampleKnobs, "SampleConfig")


@dg.asset(group_name="data", kinds={"pandas", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def corpus(context: dg.AssetExecutionContext, settings: SettingsResource,
           corpus_source: CorpusSource) -> dg.Output[pd.DataFrame]:
    """The snapshot's documents, normalized and chunked with the base model's tokenizer (token-aware,
    overlapping), exact duplicates collapsed, one content hash per chunk."""
    s = settings.get()
    base_model, snapshot = keys_of(context)
    store = corpus_source.snapshots()
    meta: dict = {}
    with timed(meta):
        docs = store.load(snapshot)
        chunks, duplicates = corpus_source.chunk(docs, s.base_model_ref(base_model))
    info = store.info(snapshot)
    quarantined = int(info.get("quarantined_rows", 0))
    meta.update({
        "snapshot": snapshot,
        "registered_at": info.get("registered_at", ""),
        "chunk_set": snapshot_id(chunks["chunk_hash"]),
        "documents": len(docs),
        "chunks": len(chunks),
        "duplicate_chunks_collapsed": duplicates,
        "quarantined_rows": quarantined,
        "source": info.get("source", ""),
        **table_metadata(chunks),
    })
    if info.get("quarantine_file"):
        meta["quarantine_file"] = dg.MetadataValue.path(info["quarantine_file"])
    return dg.Output(chunks, metadata=meta)


@dg.asset(group_name="data", kinds={"pandas", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def corpus_sample(config: SampleConfig, settings: SettingsResource, corpus: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """A seeded sample of chunks to generate queries for; stable across snapshots (a chunk keeps its place)."""
    knobs = effective(settings.get().run.sample, config)
    meta: dict = {}
    with timed(meta):
        sample = stable_sample(corpus, knobs.sample_size, knobs.seed)
    return dg.Output(sample, metadata={**meta, "sample_size": knobs.sample_size, "seed": knobs.seed,
                                       "of_chunks": len(corpus), **table_metadata(sample)})
