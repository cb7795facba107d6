"""The one measurement path: encode an eval set and a chunked corpus with one model (through its embedding
cache), then score every query. Used by base_model_eval, eval_report, the monitoring assets and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_doc_ids, chunk_texts, text_hash
from embtune_pipeline.lib.embeddings import EmbeddingStore, encode_cached, model_if_needed
from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors, qrels_of
from embtune_pipeline.lib.progress import SILENT, Reporter


@dataclass
class Encoded:
    """One model's vectors of an eval set's queries and of a chunked corpus."""

    query_vectors: np.ndarray
    corpus_vectors: np.ndarray
    distinct_texts: int  # chunks and queries it needed
    encoded: int  # of which not in the cache: encoded by this call

    @property
    def cache_hits(self) -> int:
        return self.distinct_texts - self.encoded


@dataclass
class Measurement(Encoded):
    per_query: pd.DataFrame  # one row per query: query_id and each metric at the full dimension


def encode_eval(model_path, max_seq_length: int, store: EmbeddingStore, chunks: pd.DataFrame,
                eval_set: pd.DataFrame, batch_size: int = 64, reporter: Reporter = SILENT,
                model_label: str = "the model", backend: str = "torch") -> Encoded:
    """The vectors measure scores. They come from the model's store; the model is loaded only when something is
    not stored yet, and only what is missing is encoded."""
    _, texts, _ = qrels_of(eval_set)
    needed = set(chunks["chunk_hash"]) | {text_hash(t) for t in texts}
    model = model_if_needed(store, needed, model_path, max_seq_length, backend, agreement_texts(chunks, texts))
    return encode_with(model, store, model, store, chunks, texts, batch_size, reporter, model_label)


def agreement_texts(chunks: pd.DataFrame, queries: list[str]) -> list[str]:
    """The texts an export is checked on before it encodes these (lib.encoders.agreement_sample takes the
    shortest and longest): chunks, where truncation shows, and queries."""
    return [*chunk_texts(chunks.head(2000)), *queries]


def encode_with(corpus_encoder, corpus_store: EmbeddingStore, query_encoder, query_store: EmbeddingStore,
                chunks: pd.DataFrame, texts: list[str], batch_size: int = 64, reporter: Reporter = SILENT,
                model_label: str = "the model") -> Encoded:
    """The vectors of a chunked corpus and of query texts, with encoders given (anything with a
    sentence-transformers `encode`: a hosted API too), and a store each for the corpus and the queries (an API
    may embed queries under other params)."""
    corpus_hashes = chunks["chunk_hash"].tolist()
    what = f"encoding the corpus with {model_label}"
    corpus_vectors, corpus_encoded = corpus_store.encode(corpus_encoder, corpus_hashes, chunk_texts(chunks),
                                                         batch_size, reporter, what)
    query_vectors, queries_encoded = encode_cached(query_store, query_encoder, texts, batch_size, reporter)
    distinct = len(set(corpus_hashes) | {text_hash(t) for t in texts})
    return Encoded(query_vectors, corpus_vectors, distinct, corpus_encoded + queries_encoded)


def scored(encoded: Encoded, chunks: pd.DataFrame, eval_set: pd.DataFrame) -> Measurement:
    """Per-query metrics of vectors from encode_eval or encode_with."""
    qids, _, gains = qrels_of(eval_set)
    per_query = evaluate_vectors(encoded.query_vectors, encoded.corpus_vectors, chunk_doc_ids(chunks), qids, gains)
    return Measurement(encoded.query_vectors, encoded.corpus_vectors, encoded.distinct_texts, encoded.encoded,
                       per_query)


def measure(model_path, max_seq_length: int, store: EmbeddingStore, chunks: pd.DataFrame, eval_set: pd.DataFrame,
            batch_size: int = 64, reporter: Reporter = SILENT, model_label: str = "the model",
            backend: str = "torch") -> Measurement:
    """Per-query metrics of one model on one eval set over one chunked corpus (vectors from encode_eval)."""
    return scored(encode_eval(model_path, max_seq_length, store, chunks, eval_set, batch_size, reporter,
                              model_label, backend), chunks, eval_set)
