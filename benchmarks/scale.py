"""The embedding store and the mining index at scale: time and memory at N chunks of D-dim vectors (synthetic,
clustered vectors: neither the store's nor the index's cost depends on the model that made them).

    python benchmarks/scale.py --chunks 100000 1000000 [--dim 384] [--write-with fill|encode] [--out DIR]

Each size runs in a fresh process and prints one JSON line: the seconds to write N vectors through
EmbeddingStore.fill (in shards of batch_size x BATCHES_PER_SHARD, as base_corpus_embeddings writes them), to open the
store and read 10,000 random vectors, and to read all N in order; the bytes on disk; the process's resident
memory after each stage (anon: its own; file: shard pages mapped from disk, reclaimable). Then the mining index,
as hard_negatives uses it: the seconds to build the HNSW index from the store (EmbeddingStore.corpus_index) and
its size on disk, the seconds to load it again, mining (mine_hard_negatives, rank window 10-50) per 1,000 queries
through it and through an exact scan, and recall@50 of the HNSW search against the exact one on 10,000 queries
(corpus vectors moved a little: a query lies near its passage). Each stage's peak RSS is its own (lib.memory).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from embtune_pipeline.lib.memory import peak_during, process_peak_rss_mb

BATCH_SIZE = 256


TOPICS = 2000  # cluster centres: real embeddings cluster by topic; uniform random vectors have no neighbours
SAMPLE_QUERIES = 10_000


class RandomVectors:
    """Stands in for a model: unit vectors around TOPICS centres, reproducible, at the cost of a random draw."""

    def __init__(self, dim: int):
        self.dim = dim
        self.rng = np.random.default_rng(0)
        self.centres = self.rng.standard_normal((TOPICS, dim), dtype=np.float32)

    def encode(self, texts, **kwargs) -> np.ndarray:
        v = self.centres[self.rng.integers(0, TOPICS, len(texts))]
        v = v + 0.9 * self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def rss_mb() -> dict:
    """Resident memory in MiB: anon (the process's own: arrays, the index) and file (shard pages mapped from
    disk: page cache, which the kernel reclaims under pressure), from /proc/self/status (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {kind: round(int(fields[f"Rss{kind.capitalize()}"].split()[0]) / 1024, 1) for kind in ("anon", "file")}


def measure(n: int, dim: int, root: Path, write_with: str) -> dict:
    from embtune_pipeline.lib.embeddings import EmbeddingStore

    hashes = [f"{i:032x}" for i in range(n)]
    out: dict = {"chunks": n, "dim": dim, "rss_mb_start": rss_mb()}
    start = time.perf_counter()
    store = EmbeddingStore(root)
    if write_with == "fill":  # as base_corpus_embeddings writes
        encoded = store.fill(RandomVectors(dim), hashes, hashes, BATCH_SIZE)
    else:  # encode also returns every vector, N x D in RAM, dropped here
        encoded = store.encode(RandomVectors(dim), hashes, hashes, BATCH_SIZE)[1]
    del store
    out.update(write_with=write_with, write_seconds=round(time.perf_counter() - start, 2), encoded=encoded,
               rss_mb_after_write=rss_mb(), peak_rss_mb_while_writing=process_peak_rss_mb())
    out["disk_mb"] = round(sum(f.stat().st_size for f in root.iterdir()) / 2**20, 1)

    sample = [hashes[i] for i in np.random.default_rng(1).choice(n, 10_000, replace=False)]
    start = time.perf_counter()
    store = EmbeddingStore(root)  # a fresh reader: opens the shards memory-mapped
    vectors = store.get(sample)
    out.update(open_and_read_10k_seconds=round(time.perf_counter() - start, 2), rss_mb_after_read_10k=rss_mb())
    assert vectors.shape == (10_000, dim)

    start = time.perf_counter()
    everything = store.get(hashes)
    out.update(read_all_seconds=round(time.perf_counter() - start, 2), rss_mb_after_read_all=rss_mb())
    assert everything.shape == (n, dim)
    del vectors, everything, store  # unmapped: a second store mapping the same shards would count them twice
    out["peak_rss_mb_store"] = process_peak_rss_mb()
    out.update(mining_index(root, hashes))
    out["peak_rss_mb"] = process_peak_rss_mb()
    return out


@contextmanager
def stage(out: dict, name: str):
    """out[name_seconds] and out[name_peak_rss_mb]: the stage's own time and peak resident memory."""
    start = time.perf_counter()
    memory: dict = {}
    with peak_during(memory):
        yield
    out[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
    out[f"{name}_peak_rss_mb"] = memory.get("peak_rss_mb")


def mining_index(root: Path, hashes: list[str]) -> dict:
    """The HNSW index as hard_negatives builds and reuses it, mining through it, and its recall against exact."""
    import faiss

    from embtune_pipeline.lib.embeddings import EmbeddingStore
    from embtune_pipeline.lib.evaluation.retrieval import CorpusIndex
    from embtune_pipeline.lib.training.mining import mine_hard_negatives

    out: dict = {}
    with stage(out, "index_build"):
        index, reused = EmbeddingStore(root).corpus_index(hashes, approximate=True)
    assert not reused and index.kind == "hnsw"
    out["index_disk_mb"] = round(sum(f.stat().st_size for f in (root / "indexes").iterdir()) / 2**20, 1)
    del index
    with stage(out, "index_load"):
        index, reused = EmbeddingStore(root).corpus_index(hashes, approximate=True)
    assert reused

    corpus = EmbeddingStore(root).get(hashes)  # for the exact search and the queries: N x D in RAM from here
    rng = np.random.default_rng(2)
    rows = rng.choice(len(corpus), SAMPLE_QUERIES, replace=False)
    queries = corpus[rows] + 0.02 * rng.standard_normal((SAMPLE_QUERIES, corpus.shape[1]), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with stage(out, "exact_search_10k"):
        _, exact = faiss.knn(queries, corpus, 50, metric=faiss.METRIC_INNER_PRODUCT)
    with stage(out, "hnsw_search_10k"):
        _, approximate = index.top_k(queries, 50)
    out["recall@50_hnsw_vs_exact"] = round(float(np.mean(
        [len(set(a) & set(b)) / 50 for a, b in zip(approximate, exact)])), 4)

    docs = [[str(i)] for i in range(len(corpus))]  # each chunk its own document; the query's own is a positive
    mined_queries, known = queries[:1000], [{str(r)} for r in rows[:1000]]
    positive_scores = np.einsum("ij,ij->i", mined_queries, corpus[rows[:1000]])
    for kind, searched in (("hnsw", index), ("exact", None)):
        with stage(out, f"mining_1k_queries_{kind}"):
            searched = searched or CorpusIndex.build(corpus, approximate=False)  # a flat copy: built in the stage
            negatives, _ = mine_hard_negatives(mined_queries, positive_scores, searched, docs, known,
                                               rank_start=10, rank_end=50, relative_margin=0.05, per_query=1)
        assert sum(map(len, negatives)) > 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--write-with", choices=["fill", "encode"], default="fill")
    ap.add_argument("--out", type=Path, default=None, help="where the stores go (default: a temporary folder)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: measure one size
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.dim, args.out, args.write_with)), flush=True)
        return
    base = args.out or Path(tempfile.mkdtemp(prefix="embtune-scale-"))
    try:
        for n in args.chunks:
            root = base / f"store-{n}"
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--out", str(root),
                            "--write-with", args.write_with],
                           check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if args.out is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
