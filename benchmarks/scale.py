"""The embedding store at scale: write and read time and memory at N chunks of D-dim vectors (synthetic vectors;
the store's cost does not depend on the model that made them).

    python benchmarks/scale.py --chunks 100000 1000000 [--dim 384] [--write-with fill|encode] [--out DIR]

Each size runs in a fresh process and prints one JSON line: the seconds to write N vectors through
EmbeddingStore.fill (in shards of batch_size x BATCHES_PER_SHARD, as base_corpus_embeddings writes them), to open the
store and read 10,000 random vectors, and to read all N in order; the bytes on disk; and the process's resident
memory after each stage (anon: its own; file: shard pages mapped from disk, reclaimable), its peak RSS while
writing and its peak RSS overall.
The ANN index and mining parts of issue 14 are not measured here yet.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH_SIZE = 256


class RandomVectors:
    """Stands in for a model: unit vectors, reproducible, at the cost of a random draw."""

    def __init__(self, dim: int):
        self.dim = dim
        self.rng = np.random.default_rng(0)

    def encode(self, texts, **kwargs) -> np.ndarray:
        v = self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def rss_mb() -> dict:
    """Resident memory in MiB: anon (the process's own: arrays, the index) and file (shard pages mapped from
    disk: page cache, which the kernel reclaims under pressure), from /proc/self/status (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {kind: round(int(fields[f"Rss{kind.capitalize()}"].split()[0]) / 1024, 1) for kind in ("anon", "file")}


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


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
               rss_mb_after_write=rss_mb(), peak_rss_mb_while_writing=peak_rss_mb())
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
    out["peak_rss_mb"] = peak_rss_mb()
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
