"""Training pairs and the eval set, from user pairs (click logs, Q&A) and synthetic queries, with provenance."""

from __future__ import annotations

import pandas as pd

from embtune_pipeline.lib.data.ingest import HUMAN, PairsSource, normalize_query, read_pairs, settle_problems
from embtune_pipeline.lib.data.sampling import stable_fraction, stable_sample
from embtune_pipeline.lib.errors import RowProblem
from embtune_pipeline.lib.evaluation.judgments import agreement, choose_judgments

USER_PAIR_COLUMNS = ["query_id", "query", "doc_id", "positive_chunk_id", "positive", "score", "source",
                     "provenance"]
# judge: who judged the row (lib.evaluation.judgments); agreement_*: people vs the LLM in the eval-set file, on
# every row alike (NaN / 0 without pairs judged by both), so the report can state it
EVAL_COLUMNS = ["query_id", "query", "doc_id", "score", "eval_source", "synthetic", "judge", "agreement_kappa",
                "agreement_pairs"]
TRAIN_COLUMNS = ["query", "positive", "positive_chunk_id", "positive_doc_id", "source", "provenance"]
SYNTHETIC_SOURCE = "synthetic"  # the source of generated pairs; every other source is a real user query
EVAL_SALT = "eval"  # the eval holdout's draw, independent of the sample and of the validation split


def is_real(pairs: pd.DataFrame) -> pd.Series:
    """Pairs whose query a user asked (click logs, Q&A), not a generator."""
    return pairs["source"] != SYNTHETIC_SOURCE


def first_chunks(chunks: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """doc id (or alias) -> (chunk id, text as embedded) of the document's first chunk."""
    from embtune_pipeline.lib.data.chunking import embedding_text

    out: dict[str, tuple[str, str]] = {}
    ordered = chunks.sort_values(["doc_id", "chunk_index"], kind="stable")
    for c in ordered.itertuples(index=False):
        for d in [c.doc_id, *list(c.alias_doc_ids)]:
            out.setdefault(d, (c.chunk_id, embedding_text(c.title, c.text)))
    return out


def _doc_id(value) -> str | None:
    return value if isinstance(value, str) and value else None  # missing may read back as NaN


def drop_unknown_documents(pairs: pd.DataFrame, chunks: pd.DataFrame) -> tuple[pd.DataFrame, list[RowProblem]]:
    """The rows aimed at a document the corpus has (or at none: answer-only pairs), and a problem naming the
    file and row of each other one."""
    known = {d for doc, aliases in zip(chunks["doc_id"], chunks["alias_doc_ids"]) for d in [doc, *list(aliases)]}
    doc_ids = pairs["doc_id"].map(_doc_id)
    unknown = doc_ids.notna() & ~doc_ids.isin(known)
    problems = [RowProblem.at(p, f"document id {d!r} is not in the corpus")
                for p, d in zip(pairs.loc[unknown, "provenance"], doc_ids[unknown])]
    return pairs[~unknown], problems


def attach_targets(pairs: pd.DataFrame, chunks: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Point each pair at its positive: the target document's first chunk, or the answer text itself."""
    pairs, problems = drop_unknown_documents(pairs, chunks)
    lookup = first_chunks(chunks)
    rows = []
    for p in pairs.itertuples(index=False):
        doc_id = _doc_id(p.doc_id)
        chunk_id, text = lookup[doc_id] if doc_id else (None, p.answer)
        rows.append((p.query_id, p.query, doc_id, chunk_id, text, p.score, source, p.provenance))
    return pd.DataFrame(rows, columns=USER_PAIR_COLUMNS), problems


def held_out(user_pairs: pd.DataFrame, holdout_fraction: float, seed: int) -> pd.DataFrame:
    """Whole queries (all their judgments together) held out for evaluation; only pairs aimed at a document."""
    mask = stable_fraction(user_pairs["query_id"], holdout_fraction, seed, EVAL_SALT) & user_pairs["doc_id"].notna()
    return user_pairs[mask]


def style_examples(user_pairs: pd.DataFrame, eval_queries: set[str], k: int, holdout_fraction: float,
                   seed: int) -> list[str]:
    """Real user queries to show the LLM for style; never one that is (eval_queries: the eval set file's) or
    may become (held out of user_pairs for evaluation) an eval query."""
    if k == 0 or user_pairs.empty:
        return []
    avoid = {normalize_query(q) for q in eval_queries}
    avoid |= set(held_out(user_pairs, holdout_fraction, seed)["query"].map(normalize_query))
    candidates = user_pairs[~user_pairs["query"].map(normalize_query).isin(avoid)]
    unique = pd.DataFrame({"query": candidates["query"].drop_duplicates()})
    return stable_sample(unique, k, seed, key_column="query")["query"].tolist()


def eval_from_judgments(judgments: pd.DataFrame, source: str, max_queries: int, seed: int,
                        synthetic: bool = False, agreement: dict | None = None) -> pd.DataFrame:
    """Long-format eval rows (one per relevant document), at most max_queries queries, stably sampled."""
    relevant = judgments[judgments["score"] > 0]
    qids = pd.DataFrame({"query_id": relevant["query_id"].unique()})
    keep = set(stable_sample(qids, max_queries, seed, key_column="query_id")["query_id"])
    rows = relevant[relevant["query_id"].isin(keep)]
    judge = rows["judge"] if "judge" in rows else ("synthetic" if synthetic else HUMAN)
    out = pd.DataFrame({
        "query_id": rows["query_id"].astype(str), "query": rows["query"], "doc_id": rows["doc_id"].astype(str),
        "score": rows["score"].astype(int), "eval_source": source, "synthetic": synthetic, "judge": judge,
        "agreement_kappa": (agreement or {}).get("kappa", float("nan")),
        "agreement_pairs": (agreement or {}).get("pairs", 0),
    })
    return out.drop_duplicates(["query_id", "doc_id"]).reset_index(drop=True)[EVAL_COLUMNS]


def synthetic_eval(queries: pd.DataFrame, chunks: pd.DataFrame, holdout_fraction: float, max_queries: int,
                   seed: int) -> pd.DataFrame:
    """Hold out the queries of a fraction of chunks; flagged synthetic, since such queries flatter a model."""
    doc_of = dict(zip(chunks["chunk_id"], chunks["doc_id"]))
    held = queries[stable_fraction(queries["chunk_hash"], holdout_fraction, seed, EVAL_SALT)]
    judgments = pd.DataFrame({
        "query_id": [f"s{i}" for i in range(len(held))], "query": held["query"].values,
        "doc_id": held["chunk_id"].map(doc_of).values, "score": 1,
    })
    return eval_from_judgments(judgments, "held-out synthetic queries", max_queries, seed, synthetic=True)


def training_pairs(synthetic: pd.DataFrame, user_pairs: pd.DataFrame, chunks: pd.DataFrame,
                   eval_set: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """All training pairs with their provenance. Any pair whose query is an eval query is dropped: this guards
    against leakage and also keeps held-out user queries out of training."""
    doc_of = dict(zip(chunks["chunk_id"], chunks["doc_id"]))
    relevant = user_pairs["score"] > 0  # a judged-irrelevant row (score 0) is no positive
    user_pairs = user_pairs[relevant]
    synth_docs = synthetic["chunk_id"].map(doc_of)
    held = pd.Series(False, index=synthetic.index)
    if bool(eval_set["synthetic"].any()):
        # a synthetic eval holds out whole chunks: none of their queries may train, not only the eval ones
        held = synth_docs.isin(set(eval_set["doc_id"]))
    synthetic, synth_docs = synthetic[~held], synth_docs[~held]
    synth = pd.DataFrame({
        "query": synthetic["query"], "positive": synthetic["positive"],
        "positive_chunk_id": synthetic["chunk_id"], "positive_doc_id": synth_docs,
        "source": SYNTHETIC_SOURCE, "provenance": synthetic["provenance"],
    })
    user = pd.DataFrame({
        "query": user_pairs["query"], "positive": user_pairs["positive"],
        "positive_chunk_id": user_pairs["positive_chunk_id"], "positive_doc_id": user_pairs["doc_id"],
        "source": user_pairs["source"], "provenance": user_pairs["provenance"],
    })
    pairs = pd.concat([user, synth], ignore_index=True)[TRAIN_COLUMNS]
    eval_queries = set(eval_set["query"].map(normalize_query))
    leaked = pairs["query"].map(normalize_query).isin(eval_queries)
    pairs = pairs[~leaked]
    before = len(pairs)
    pairs = pairs.drop_duplicates(["query", "positive"]).reset_index(drop=True)
    counts = {"not_relevant": int((~relevant).sum()), "held_out_synthetic": int(held.sum()),
              "leaked_eval_queries": int(leaked.sum()), "duplicates": before - len(pairs)}
    return pairs, counts


def read_pairs_file(source: PairsSource) -> tuple[pd.DataFrame, list[RowProblem]]:
    """The rows of a pairs file, and the rows that could not be used."""
    return read_pairs(source.path, source.format, source.split, source.query_column, source.doc_id_column,
                      source.answer_column, source.score_column)


def judged_eval_set(source: PairsSource, chunks: pd.DataFrame, bad_rows: str, quarantine_file, max_queries: int,
                    seed: int) -> tuple[pd.DataFrame, int]:
    """An eval set from a file of labelled queries: rows aimed at documents the corpus lacks fail or are
    quarantined (bad_rows); returns the eval rows and the count set aside."""
    raw, problems = read_pairs_file(source)
    known, unknown = drop_unknown_documents(raw, chunks)
    quarantined = settle_problems(problems + unknown, bad_rows, quarantine_file)
    judged = known[known["doc_id"].notna()]
    return eval_from_judgments(choose_judgments(judged), str(source.path), max_queries, seed,
                               agreement=agreement(judged)), quarantined


def choose_eval_set(user_pairs: pd.DataFrame, synthetic_queries: pd.DataFrame, chunks: pd.DataFrame,
                    holdout_fraction: float, max_queries: int, min_real_queries: int, seed: int) -> pd.DataFrame:
    """Without an eval_set file: held-out user pairs (click logs, Q&A) when there are at least min_real_queries
    of them, else held-out synthetic queries (flagged synthetic: never promotable)."""
    real = held_out(user_pairs, holdout_fraction, seed)
    if real["query_id"].nunique() >= min_real_queries:
        sources = "+".join(sorted(real["source"].unique()))
        return eval_from_judgments(real, f"held-out {sources}", max_queries, seed)
    return synthetic_eval(synthetic_queries, chunks, holdout_fraction, max_queries, seed)
