"""Vector index rollout: what a build costs and what search through an index gives, in three parts.

    .venv/bin/python benchmarks/index_rollout.py synthetic [--rows 1000000] [--dim 384] [--queries 200]
    .venv/bin/python benchmarks/index_rollout.py change [--rows 100000] [--changed 0.01]
    DAGSTER_HOME=... EMBTUNE_CONFIG=settings.yaml .venv/bin/python benchmarks/index_rollout.py pipeline \\
        --index NAME [--version N] [--queries 200]

synthetic: random unit vectors written to a LanceDB table (LanceDBStore.write_table in blocks), an ANN index
built on it (LanceDBStore.create_ann_index), and queries near stored vectors searched exactly and through the
ANN index: write seconds, ANN build seconds, recall@10 of ANN against exact, p50/p99 search latency of each,
the process's peak RSS.
change: a table of --rows synthetic chunks built by lib.serving.build.build_index, then a new snapshot with
--changed of its chunks edited, built incrementally, against the same snapshot built in full into a fresh
index: rows rewritten and seconds of each, the write apart from the check (vectors come from a stand-in encoder,
so seconds are the store's).
pipeline: after a run of the settings' pipeline (e.g. SciFact with the defaults), the index built through the
code location's build_vector_index job: build seconds, encoded vs reused, nDCG@10 through the index against the
version's eval_report; then serving.open_index: single-query latency p50/p99 including encoding, batch
queries/s. Prints one JSON line per part. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def temp_store(root: Path, index: str = "bench", ann_above_rows: int = 100_000):
    """A LanceDBStore over a throwaway settings file whose data_dir is `root`."""
    import yaml

    from embtune_pipeline.resources.settings import SettingsResource
    from embtune_pipeline.resources.vector_store import LanceDBStore

    root.mkdir(parents=True, exist_ok=True)
    path = root / "settings.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(root / "data"), "corpus": {"format": "python-docs"},
                                    "indexes": [{"name": index, "ann_above_rows": ann_above_rows}]}))
    return LanceDBStore(settings=SettingsResource(config_path=str(path)))


def unit(rng, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def rows_of(start: int, vectors: np.ndarray, suffix: str = "") -> pd.DataFrame:
    ids = range(start, start + len(vectors))
    return pd.DataFrame({"chunk_id": [f"c{i}#0" for i in ids], "doc_id": [f"c{i}" for i in ids],
                         "alias_doc_ids": [[] for _ in ids], "chunk_hash": [f"h{i}{suffix}" for i in ids],
                         "title": "", "text": [f"chunk {i}{suffix}" for i in ids], "vector": list(vectors)})


def synthetic(args) -> dict:
    from embtune_pipeline.lib.serving.tables import TableMeta
    from embtune_pipeline.lib.storage import utc_now

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = temp_store(Path(tmp))
        meta = TableMeta("bench", "bench__v1__synthetic", "bench", "1", "synthetic", "synthetic", args.rows,
                         args.dim, utc_now())
        block, sample = 100_000, []
        started = time.perf_counter()
        for start in range(0, args.rows, block):
            vectors = unit(rng, min(block, args.rows - start), args.dim)
            sample.append(vectors[: max(1, args.queries // max(1, args.rows // block))])
            rows = rows_of(start, vectors)
            if start == 0:
                store.write_table("bench", meta, rows)
            else:
                store._open("bench", meta.table).add(store._arrow(rows, args.dim))
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        store.create_ann_index("bench", meta.table)
        ann_seconds = time.perf_counter() - started
        queries = np.concatenate(sample)[: args.queries]
        queries = queries + 0.1 * unit(rng, len(queries), args.dim)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        timings = {"exact": [], "ann": []}
        found = {"exact": [], "ann": []}
        for q in queries:
            for kind in ("exact", "ann"):
                t = time.perf_counter()
                hits = store.search("bench", meta.table, q[None], 10, exact=kind == "exact")[0]
                timings[kind].append(time.perf_counter() - t)
                found[kind].append({h.chunk_id for h in hits})
        recall = float(np.mean([len(e & a) / max(len(e), 1) for e, a in zip(found["exact"], found["ann"])]))
    return {"part": "synthetic", "rows": args.rows, "dim": args.dim, "queries": len(queries),
            "write_seconds": round(write_seconds, 2), "ann_build_seconds": round(ann_seconds, 2),
            "ann_recall@10_vs_exact": round(recall, 4), "exact_search": percentiles(timings["exact"]),
            "ann_search": percentiles(timings["ann"]), "peak_rss_mb": peak_rss_mb()}


def change(args) -> dict:
    from embtune_pipeline.lib.data.chunking import chunk_doc_ids
    from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors
    from embtune_pipeline.lib.serving.build import BuildRequest, build_index

    rng = np.random.default_rng(0)
    base = unit(rng, args.rows, args.dim)
    edited = rng.choice(args.rows, int(args.rows * args.changed), replace=False)
    after = base.copy()
    after[edited] = unit(rng, len(edited), args.dim)
    first = rows_of(0, base)
    second = first.copy()
    second.loc[edited, "chunk_hash"] = [f"h{i}-v2" for i in edited]
    second.loc[edited, "text"] = [f"chunk {i} v2" for i in edited]
    second["vector"] = list(after)
    by_hash = {**dict(zip(first["chunk_hash"], first["vector"])), **dict(zip(second["chunk_hash"], second["vector"]))}

    def encode(rows):
        return np.stack([by_hash[h] for h in rows["chunk_hash"]]), len(rows)

    def request(chunks, snapshot):
        vectors = np.stack(chunks["vector"].tolist())
        picked = np.arange(0, len(chunks), max(1, len(chunks) // 100))
        queries, gains = vectors[picked], [{chunks["doc_id"].iloc[i]: 1} for i in picked]
        reference = evaluate_vectors(queries, vectors, chunk_doc_ids(chunks), [str(i) for i in picked], gains)
        return BuildRequest("bench", "bench", "1", "synthetic", snapshot, chunks.drop(columns="vector"), args.dim,
                            queries, gains, float(reference["ndcg@10"].mean()), "exact scan", 2, args.rows + 1)

    with tempfile.TemporaryDirectory() as tmp:
        store = temp_store(Path(tmp))
        build_index(store, request(first, "s1"), encode)
        incremental = build_index(store, request(second, "s2"), encode)
        full_store = temp_store(Path(tmp) / "full")
        full = build_index(full_store, request(second, "s2"), encode)
    return {"part": "change", "rows": args.rows, "changed_fraction": args.changed,
            **{name: {"mode": b.plan.mode, "rows_rewritten": b.plan.rewritten, "seconds": round(b.seconds, 2),
                      "write_seconds": round(b.write_seconds, 3), "check_seconds": round(b.check_seconds, 2)}
               for name, b in (("incremental", incremental), ("full", full))},
            "incremental_share_of_full_write_seconds": round(incremental.write_seconds / full.write_seconds, 4),
            "peak_rss_mb": peak_rss_mb()}


def pipeline(args) -> dict:
    import dagster as dg

    from embtune_pipeline.definitions import build_definitions
    from embtune_pipeline.lib.evaluation.evaluate import qrels_of
    from embtune_pipeline.serving import open_index

    defs = build_definitions()
    started = time.perf_counter()
    config = {"version": args.version} if args.version else {}
    result = defs.resolve_job_def("build_vector_index").execute_in_process(
        partition_key=args.index, run_config={"ops": {"vector_index": {"config": config}}},
        instance=dg.DagsterInstance.get())
    wall = time.perf_counter() - started
    meta = {k: v.value for k, v in result.asset_materializations_for_node("vector_index")[-1].metadata.items()}
    from embtune_pipeline.lib.serving.versions import version_model

    index = open_index(args.index)
    s = defs.resources["settings"].get()
    registry = defs.resources["mlflow"].registry()
    vm = version_model(registry, registry.get(index.version), s.layout.downloaded_models, s.run.embed.max_seq_length)
    _, texts, _ = qrels_of(s.layout.read_asset("eval_set", vm.partition))  # the version's eval queries
    texts = texts[: args.queries]
    index.search(texts[:1], 10)  # warm-up
    single = []
    for t in texts:
        began = time.perf_counter()
        index.search([t], 10)
        single.append(time.perf_counter() - began)
    began = time.perf_counter()
    index.search(texts, 10)
    batch = len(texts) / (time.perf_counter() - began)
    return {"part": "pipeline", "index": args.index, "table": meta["table"], "version": meta["model_version"],
            "build_seconds": meta["build_seconds"], "run_seconds": round(wall, 2), "encoded": meta["encoded"],
            "reused": meta["reused"], "ndcg@10_through_index": meta["ndcg@10_through_index"],
            "ndcg@10_eval_report": meta["ndcg@10_reference"], "reference": meta["ndcg@10_reference_from"],
            "single_query_with_encoding": percentiles(single), "batch_queries_per_s": round(batch, 1),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("synthetic")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=200)
    p = sub.add_parser("change")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--changed", type=float, default=0.01)
    p = sub.add_parser("pipeline")
    p.add_argument("--index", required=True)
    p.add_argument("--version", default=None)
    p.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps({"synthetic": synthetic, "change": change, "pipeline": pipeline}[args.part](args)), flush=True)


if __name__ == "__main__":
    main()
