"""base_corpus_embeddings -> hard_negatives."""


import dagster as dg
import numpy as np
import pandas as pd

from embtune_pipeline.assets._common import (
    cache_metadata,
    effective,
    embedding_store,
    optional_config,
    reporter,
    table_metadata,
    timed,
)
from embtune_pipeline.lib.data.chunking import chunk_doc_ids, chunk_texts, text_hash
from embtune_pipeline.lib.embeddings import embedding_key, encode_cached, model_if_needed
from embtune_pipeline.lib.models import model_fingerprint, resolve_model_path
from embtune_pipeline.lib.queries.pairs import is_real
from embtune_pipeline.lib.training.mining import fill_random, mine_hard_negatives, round_trip_kept, training_rows
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import EmbedKnobs, MiningKnobs

EmbedConfig = optional_config(EmbedKnobs, "EmbedConfig")
MiningConfig = optional_config(MiningKnobs, "MiningConfig")


@dg.asset(group_name="training", kinds={"sentence_transformers", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def base_corpus_embeddings(context: dg.AssetExecutionContext, config: EmbedConfig, settings: SettingsResource,
                           corpus: pd.DataFrame) -> dg.Output[dict]:
    """The base model's vector for every chunk, computed once per (base model, chunk content): cached on disk
    by content hash, so mining and evaluation share it and a new snapshot encodes only its new chunks."""
    s = settings.get()
    knobs = effective(s.run.embed, config)
    if s.corpus.chunk_tokens > knobs.max_seq_length - 2:
        context.log.warning(f"max_seq_length {knobs.max_seq_length} is shorter than corpus.chunk_tokens "
                            f"{s.corpus.chunk_tokens}: the tails of long chunks are cut when embedded")
    base_model = s.base_model_ref(keys_of(context)[0])
    path = resolve_model_path(base_model)
    key = embedding_key(model_fingerprint(path), knobs.max_seq_length)
    store = embedding_store(s, key)
    meta: dict = {}
    with timed(meta):
        model = model_if_needed(store, corpus["chunk_hash"], path, knobs.max_seq_length)
        vecs, encoded = store.encode(model, corpus["chunk_hash"].tolist(), chunk_texts(corpus), knobs.batch_size,
                                     reporter(context, s), "encoding the corpus with the base model")
    value = {"base_model": base_model, "model_path": str(path), "key": key, "max_seq_length": knobs.max_seq_length,
             "batch_size": knobs.batch_size, "chunks": len(corpus), "dim": int(vecs.shape[1])}
    meta.update({**cache_metadata(len(corpus), encoded),
                 **{k: v for k, v in value.items() if k != "model_path"}})
    return dg.Output(value, metadata=meta)


@dg.asset(group_name="training", kinds={"parquet", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def hard_negatives(context: dg.AssetExecutionContext, config: MiningConfig, settings: SettingsResource,
                   training_pairs: pd.DataFrame,
                   corpus: pd.DataFrame, base_corpus_embeddings: dict) -> dg.Output[pd.DataFrame]:
    """Training rows (anchor, positive, negative_1..n): negatives from a rank window of the base model, minus
    known positives and anything scored within a margin of the positive (likely unlabelled positives)."""
    s = settings.get()
    knobs = effective(s.run.mining, config)
    emb = base_corpus_embeddings
    store = embedding_store(s, emb["key"])
    meta: dict = {}
    with timed(meta):
        corpus_vecs = store.get(corpus["chunk_hash"].tolist())
        texts = [*training_pairs["query"], *training_pairs["positive"]]
        model = model_if_needed(store, [text_hash(t) for t in texts], emb["model_path"], emb["max_seq_length"])
        progress = reporter(context, s)
        query_vecs, queries_encoded = encode_cached(store, model, training_pairs["query"].tolist(), emb["batch_size"],
                                                    progress)
        pos_vecs, positives_encoded = encode_cached(store, model, training_pairs["positive"].tolist(),
                                                    emb["batch_size"], progress, "encoding positives")
        encoded = queries_encoded + positives_encoded
        meta.update(cache_metadata(len({text_hash(t) for t in texts}), encoded))
        docs = chunk_doc_ids(corpus)
        known = training_pairs.groupby("query")["positive_doc_id"].agg(lambda d: {x for x in d if isinstance(x, str)})
        known_per_pair = [known[q] for q in training_pairs["query"]]
        round_trip = round_trip_kept(query_vecs, corpus_vecs, docs, known_per_pair, knobs.round_trip_k)
        keep = round_trip | is_real(training_pairs).to_numpy()  # real queries always train
        meta["rejected_round_trip"] = int((~keep).sum())
        training_pairs = training_pairs[keep].reset_index(drop=True)
        query_vecs, pos_vecs = query_vecs[keep], pos_vecs[keep]
        known_per_pair = [k for k, ok in zip(known_per_pair, keep) if ok]
        pos_scores = np.einsum("ij,ij->i", query_vecs, pos_vecs)
        negatives, stats = mine_hard_negatives(query_vecs, pos_scores, corpus_vecs, docs, known_per_pair,
                                               knobs.rank_start, knobs.rank_end, knobs.relative_margin,
                                               knobs.negatives_per_query)
        stats["random_fill"], random_pairs = fill_random(negatives, known_per_pair, docs, knobs.negatives_per_query,
                                                         knobs.seed)
    rows = training_rows(training_pairs, negatives, pos_scores, chunk_texts(corpus), corpus["chunk_id"].tolist(),
                         knobs.negatives_per_query)
    stats["dropped_without_negative"] = len(training_pairs) - len(rows)
    share = random_pairs / max(len(negatives), 1)
    meta["pairs_with_random_negative"] = random_pairs
    meta["random_negative_share"] = round(share, 4)
    if random_pairs:
        context.log.warning(
            f"{random_pairs} of {len(negatives)} pairs ({share:.0%}) got a random negative: the rank window "
            f"{knobs.rank_start}-{knobs.rank_end} held too few candidates outside the margin; random negatives are "
            "easy ones (widen the window or lower mining.relative_margin to mine more)")
    meta.update({**{k: int(v) for k, v in stats.items()}, "rank_window": f"{knobs.rank_start}-{knobs.rank_end}",
                 "round_trip_k": knobs.round_trip_k,
                 "relative_margin": knobs.relative_margin, **table_metadata(rows)})
    return dg.Output(rows, metadata=meta)
