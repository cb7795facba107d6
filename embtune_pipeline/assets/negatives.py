"""base_corpus_embeddings -> hard_negatives."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import (
    cache_metadata,
    effective,
    optional_config,
    reporter,
    table_metadata,
    timed,
)
from embtune_pipeline.lib.data.chunking import chunk_texts, text_hash
from embtune_pipeline.lib.embeddings import encode_cached, model_if_needed
from embtune_pipeline.lib.models import resolve_model_path
from embtune_pipeline.lib.training.mining import mine_training_rows, random_negative_warning
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import EmbedKnobs, MiningKnobs

EmbedConfig = optional_config(EmbedKnobs, "EmbedConfig")
MiningConfig = optional_config(MiningKnobs, "MiningConfig")


@dg.asset(group_name="training", kinds={"sentence_transformers", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def base_corpus_embeddings(context: dg.AssetExecutionContext, config: EmbedConfig, settings: SettingsResource,
                           embeddings: EmbeddingCache, corpus: pd.DataFrame) -> dg.Output[dict]:
    """The base model's vector for every chunk, computed once per (base model, chunk content): cached on disk
    by content hash, so mining and evaluation share it and a new snapshot encodes only its new chunks."""
    s = settings.get()
    knobs = effective(s.run.embed, config)
    if s.corpus.chunk_tokens > knobs.max_seq_length - 2:
        context.log.warning(f"max_seq_length {knobs.max_seq_length} is shorter than corpus.chunk_tokens "
                            f"{s.corpus.chunk_tokens}: the tails of long chunks are cut when embedded")
    base_model = s.base_model_ref(keys_of(context)[0])
    path = resolve_model_path(base_model)
    key = embeddings.key_for(path, knobs.max_seq_length)
    store = embeddings.store(key)
    meta: dict = {}
    with timed(meta):
        model = model_if_needed(store, corpus["chunk_hash"], path, knobs.max_seq_length)
        encoded = store.fill(model, corpus["chunk_hash"].tolist(), chunk_texts(corpus), knobs.batch_size,
                             reporter(context, s), "encoding the corpus with the base model")
    value = {"base_model": base_model, "model_path": str(path), "key": key, "max_seq_length": knobs.max_seq_length,
             "batch_size": knobs.batch_size, "chunks": len(corpus), "dim": store.dim}
    meta.update({**cache_metadata(len(corpus), encoded),
                 **{k: v for k, v in value.items() if k != "model_path"}})
    return dg.Output(value, metadata=meta)


@dg.asset(group_name="training", kinds={"parquet", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def hard_negatives(context: dg.AssetExecutionContext, config: MiningConfig, settings: SettingsResource,
                   embeddings: EmbeddingCache, training_pairs: pd.DataFrame,
                   corpus: pd.DataFrame, base_corpus_embeddings: dict) -> dg.Output[pd.DataFrame]:
    """Training rows (anchor, positive, negative_1..n): negatives from a rank window of the base model, minus
    known positives and anything scored within a margin of the positive (likely unlabelled positives)."""
    s = settings.get()
    knobs = effective(s.run.mining, config)
    emb = base_corpus_embeddings
    store = embeddings.store(emb["key"])
    meta: dict = {}
    with timed(meta):
        approximate = len(corpus) > knobs.approximate_above_chunks
        corpus_index, index_reused = store.corpus_index(corpus["chunk_hash"].tolist(), approximate)
        texts = [*training_pairs["query"], *training_pairs["positive"]]
        model = model_if_needed(store, [text_hash(t) for t in texts], emb["model_path"], emb["max_seq_length"])
        progress = reporter(context, s)
        query_vecs, queries_encoded = encode_cached(store, model, training_pairs["query"].tolist(), emb["batch_size"],
                                                    progress)
        pos_vecs, positives_encoded = encode_cached(store, model, training_pairs["positive"].tolist(),
                                                    emb["batch_size"], progress, "encoding positives")
        meta.update(cache_metadata(len(set(texts)), queries_encoded + positives_encoded))
        rows, stats = mine_training_rows(training_pairs, query_vecs, pos_vecs, corpus_index, corpus,
                                         rank_start=knobs.rank_start, rank_end=knobs.rank_end,
                                         relative_margin=knobs.relative_margin, per_query=knobs.negatives_per_query,
                                         round_trip_k=knobs.round_trip_k, seed=knobs.seed)
    if warning := random_negative_warning(stats, knobs.rank_start, knobs.rank_end):
        context.log.warning(warning)
    meta.update({**stats, "random_negative_share": round(stats["random_negative_share"], 4),
                 "rank_window": f"{knobs.rank_start}-{knobs.rank_end}", "round_trip_k": knobs.round_trip_k,
                 "relative_margin": knobs.relative_margin, "corpus_index": corpus_index.kind,
                 "corpus_index_reused": index_reused,
                 "corpus_index_build_seconds": round(corpus_index.build_seconds, 2),
                 **table_metadata(rows)})
    return dg.Output(rows, metadata=meta)
