"""base_corpus_embeddings -> hard_negatives."""


import shutil

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
from embtune_pipeline.lib.embeddings import backend_of, encode_cached, encoder_backend, encoding_shards, model_if_needed
from embtune_pipeline.lib.models import resolve_model_path
from embtune_pipeline.lib.queries.pairs import is_real
from embtune_pipeline.lib.training.data import reachable_pairs
from embtune_pipeline.lib.training.mining import mine_training_rows, random_negative_warning
from embtune_pipeline.lib.training.teacher import teacher_warning
from embtune_pipeline.lib.training.validation import trains_balanced
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.io_managers import STEP_OUTPUTS
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.teacher import TeacherModel
from embtune_pipeline.settings import EmbedKnobs, MiningKnobs

EmbedConfig = optional_config(EmbedKnobs, "EmbedConfig")
MiningConfig = optional_config(MiningKnobs, "MiningConfig")


@dg.op(out={"plan": dg.Out(io_manager_key=STEP_OUTPUTS), "shards": dg.DynamicOut(io_manager_key=STEP_OUTPUTS)})
def plan_corpus_shards(context: dg.OpExecutionContext, config: EmbedConfig, settings: SettingsResource,
                       embeddings: EmbeddingCache, corpus: pd.DataFrame):
    """Which chunks the base model has not encoded yet, cut into shards of run.embed.shard_chunks; each shard
    carries its own texts, so the step that encodes it reads those alone, not the whole corpus."""
    s = settings.get()
    knobs = effective(s.run.embed, config)
    if s.corpus.chunk_tokens > knobs.max_seq_length - 2:
        context.log.warning(f"max_seq_length {knobs.max_seq_length} is shorter than corpus.chunk_tokens "
                            f"{s.corpus.chunk_tokens}: the tails of long chunks are cut when embedded")
    base_model = s.base_model_ref(keys_of(context)[0])
    path = resolve_model_path(base_model)
    key = embeddings.key_for(path, knobs.max_seq_length)
    shards = encoding_shards(embeddings.store(key), corpus["chunk_hash"], knobs.shard_chunks)
    context.log.info(f"{sum(map(len, shards))} of {len(corpus)} chunks to encode, in {len(shards)} shard(s)")
    yield dg.Output({"base_model": base_model, "model_path": str(path), "key": key, "chunks": len(corpus),
                     "max_seq_length": knobs.max_seq_length, "batch_size": knobs.batch_size,
                     "backend": knobs.backend}, "plan")
    todo = corpus[corpus["chunk_hash"].isin({h for shard in shards for h in shard})]  # a rerun: none
    text_of = dict(zip(todo["chunk_hash"], chunk_texts(todo)))
    for i, hashes in enumerate(shards):
        yield dg.DynamicOutput({"hashes": hashes, "texts": [text_of[h] for h in hashes],
                                "name": f"shard {i + 1} of {len(shards)}"}, str(i), "shards")


@dg.op(out=dg.Out(io_manager_key=STEP_OUTPUTS))
def encode_corpus_shard(context: dg.OpExecutionContext, settings: SettingsResource, embeddings: EmbeddingCache,
                        plan: dict, shard: dict) -> dict:
    """One shard of the chunks, encoded into the base model's store (a GPU step when k8s.gpu_steps names it)."""
    store, meta = embeddings.store(plan["key"]), {}
    with timed(meta):
        model = model_if_needed(store, shard["hashes"], plan["model_path"], plan["max_seq_length"],
                                plan["backend"], shard["texts"])
        encoded = store.fill(model, shard["hashes"], shard["texts"], plan["batch_size"],
                             reporter(context, settings.get()),
                             f"encoding the corpus with the base model, {shard['name']}")
    return {"encoded": encoded, "missing": len(store.missing(shard["hashes"])), "backend": backend_of(model),
            **meta}


@dg.op
def merge_corpus_shards(context: dg.OpExecutionContext, settings: SettingsResource, plan: dict, shards: list[dict],
                        embeddings: EmbeddingCache) -> dg.Output[dict]:
    """Every chunk's vector is in the store, whichever shard wrote it: the asset's value, and what it cost. The
    shards' texts handed between the steps are deleted then (the vectors are what is kept)."""
    store = embeddings.store(plan["key"])
    if missing := sum(s["missing"] for s in shards):
        raise RuntimeError(f"{missing} chunks have no vector in {store.root} after every shard ran")
    shutil.rmtree(settings.get().layout.step_outputs / context.run_id, ignore_errors=True)
    encoded = sum(s["encoded"] for s in shards)
    value = {**plan, "dim": store.dim}
    return dg.Output(value, metadata={
        **cache_metadata(plan["chunks"], encoded), **{k: v for k, v in value.items() if k != "model_path"},
        "shards": len(shards), "slowest_shard_seconds": max(s["seconds"] for s in shards),
        "encoded_with": ", ".join(sorted({s.get("backend", "torch") for s in shards if s["encoded"]})) or "none",
        "peak_rss_mb": max((s["peak_rss_mb"] for s in shards if "peak_rss_mb" in s), default=None)})


@dg.graph_asset(group_name="training", kinds={"sentence_transformers", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def base_corpus_embeddings(corpus: pd.DataFrame):
    """The base model's vector for every chunk, computed once per (base model, chunk content): cached on disk
    by content hash, so mining and evaluation share it and a new snapshot encodes only its new chunks. The
    chunks to encode are cut into shards, each a step of its own, so executors can run them side by side."""
    plan, shards = plan_corpus_shards(corpus)
    encoded = shards.map(lambda shard: encode_corpus_shard(plan, shard))
    return merge_corpus_shards(plan, encoded.collect())


# mining's counts that repeat one shown under another name (pairs_mined; pairs_with_random_negative)
SAME_NUMBER_AS_ANOTHER = {"mined_pairs", "pairs_without_negative", "random_fill"}


@dg.asset(group_name="training", kinds={"parquet", "numpy"}, partitions_def=RETUNE_PARTITIONS)
def hard_negatives(context: dg.AssetExecutionContext, config: MiningConfig, settings: SettingsResource,
                   embeddings: EmbeddingCache, teacher: TeacherModel, training_pairs: pd.DataFrame,
                   corpus: pd.DataFrame, base_corpus_embeddings: dict) -> dg.Output[pd.DataFrame]:
    """Training rows (anchor, positive, negative_1..n): negatives from a rank window of the base model, minus
    known positives and anything scored within a margin of the positive (likely unlabelled positives). With a
    teacher, the teacher judges instead (false negatives, round trip) and scores each row for distillation.
    Pairs the training cannot reach are left out (corpus-only, beyond run.train.corpus_only_max_pairs; balanced,
    synthetic pairs beyond what the epochs draw): metadata pairs_not_mined_<why> says how many and why."""
    s = settings.get()
    knobs = effective(s.run.mining, config)
    emb = base_corpus_embeddings
    store = embeddings.store(emb["key"])
    pairs, skipped = _reachable(s.run.train, training_pairs, knobs.seed)
    meta: dict = {"pairs_mined": len(pairs), **{f"pairs_not_mined_{why}": n for why, n in skipped.items()}}
    with timed(meta):
        corpus_index, index_reused = store.corpus_index(corpus["chunk_hash"].tolist(),
                                                        approximate=len(corpus) > knobs.approximate_above_chunks)
        query_vecs, pos_vecs = _base_vectors(context, s, store, emb, pairs, meta)
        judge = teacher.scorer(embeddings, reporter(context, s))
        rows, stats = mine_training_rows(pairs, query_vecs, pos_vecs, corpus_index, corpus,
                                         rank_start=knobs.rank_start, rank_end=knobs.rank_end,
                                         relative_margin=knobs.relative_margin, per_query=knobs.negatives_per_query,
                                         round_trip_k=knobs.round_trip_k, seed=knobs.seed, teacher=judge)
    for warning in (random_negative_warning(stats, knobs.rank_start, knobs.rank_end),
                    teacher_warning(stats["teacher_check"]) if judge else None):
        if warning:
            context.log.warning(warning)
    meta.update({**_shown(stats), "random_negative_share": round(stats["random_negative_share"], 4),
                 "rank_window": f"{knobs.rank_start}-{knobs.rank_end}", "round_trip_k": knobs.round_trip_k,
                 "relative_margin": knobs.relative_margin, **_index_metadata(corpus_index, index_reused),
                 **(judge.cost if judge else {"teacher": "none"}), **table_metadata(rows)})
    return dg.Output(rows, metadata=meta)


def _shown(stats: dict) -> dict:
    """Mining's counts as the asset page shows them: one name per number."""
    return {k: v for k, v in stats.items() if k not in SAME_NUMBER_AS_ANOTHER}


def _reachable(train, training_pairs: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, dict]:
    """The pairs the training can reach (lib.training.data.reachable_pairs), as the train knobs decide it."""
    balanced = trains_balanced(train, training_pairs["query"], is_real(training_pairs))
    return reachable_pairs(training_pairs, balanced=balanced, batch_size=train.batch_size, epochs=train.epochs,
                           corpus_only_max_pairs=train.corpus_only_max_pairs, seed=seed)


def _base_vectors(context, s, store, emb: dict, pairs: pd.DataFrame, meta: dict):
    """The base model's vectors of the pairs' queries and positives (cached by text)."""
    texts = [*pairs["query"], *pairs["positive"]]
    model = model_if_needed(store, [text_hash(t) for t in texts], emb["model_path"], emb["max_seq_length"],
                            encoder_backend(emb), texts)
    progress = reporter(context, s)
    query_vecs, queries_encoded = encode_cached(store, model, pairs["query"].tolist(), emb["batch_size"], progress)
    pos_vecs, positives_encoded = encode_cached(store, model, pairs["positive"].tolist(), emb["batch_size"],
                                                progress, "encoding positives")
    meta.update({**cache_metadata(len(set(texts)), queries_encoded + positives_encoded),
                 "encoded_with": backend_of(model)})
    return query_vecs, pos_vecs


def _index_metadata(index, reused: bool) -> dict:
    """How the corpus was searched: exact, or an HNSW index built in this step or reused from an earlier one."""
    return {"corpus_index": index.kind, "corpus_index_reused": reused,
            "corpus_index_build_seconds": round(index.build_seconds, 2)}
