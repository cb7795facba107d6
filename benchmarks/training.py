"""Training throughput and memory: train_model exactly as finetuned_model calls it, on real pairs (a BEIR train
split: each query with its judged passage, another pair's passage as the negative), with the default base model,
for each combination of process count (run.train.processes) and mini-batch size (run.train.mini_batch_size).

    python benchmarks/training.py BEIR_DIR [--pairs 256] [--processes 1 2] [--mini-batch-size 0 8]
                                  [--max-seq-length 256] [--batch-size 32]

Prints one JSON line per combination: optimizer steps, pairs trained, seconds, pairs/s, the mean loss of the
first and last fifth of the steps, and the training's peak RSS (rank 0's, with several processes). Each run
starts from the base model in a fresh folder. On one machine of C cores, N processes share them
(OMP_NUM_THREADS = C / N each): on CPU this checks that the launch works and learns, not that it is faster; the
speed-up is on N GPUs. mini_batch_size 0 is MultipleNegativesRankingLoss in one pass; > 0 its cached (GradCache)
form, the same gradients computed a mini-batch at a time.
"""

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def training_rows(beir_dir: Path, n: int):
    from embtune_pipeline.lib.data.ingest import read_documents, read_pairs

    pairs, _ = read_pairs(beir_dir, "beir", split="train")
    docs, _ = read_documents(beir_dir, "beir", id_column="_id")
    text = dict(zip(docs["doc_id"], (docs["title"].fillna("") + " " + docs["text"]).str.strip()))
    pairs = pairs[pairs["doc_id"].isin(text)].drop_duplicates("query").head(n).reset_index(drop=True)
    positives = pairs["doc_id"].map(text)
    return pairs.assign(anchor=pairs["query"], positive=positives,
                        negative_1=positives.shift(1, fill_value=positives.iloc[-1]))[
        ["anchor", "positive", "negative_1"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--mini-batch-size", type=int, nargs="+", default=[0, 8])
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from embtune_pipeline.lib.models import resolve_model_path
    from embtune_pipeline.lib.training.train import TrainSpec, train_model
    from embtune_pipeline.settings.schema import DEFAULT_BASE_MODEL

    rows = training_rows(args.beir_dir, args.pairs)
    base = resolve_model_path(DEFAULT_BASE_MODEL)
    for processes, mini_batch_size in itertools.product(args.processes, args.mini_batch_size):
        spec = TrainSpec(base, args.max_seq_length, epochs=1, batch_size=args.batch_size, warmup_ratio=0.1,
                         save_steps=10_000, processes=processes, mini_batch_size=mini_batch_size)
        with tempfile.TemporaryDirectory(prefix="embtune-training-") as tmp:
            result = train_model(spec, rows, Path(tmp) / "model", Path(tmp) / "checkpoints")
        losses = [loss for _, loss in result.loss_history]
        fifth = max(1, len(losses) // 5)
        print(json.dumps({
            "processes": processes, "mini_batch_size": mini_batch_size, "pairs": len(rows),
            "global_batch": result.used["batch_size"], "max_seq_length": args.max_seq_length, "steps": result.steps,
            "train_seconds": round(result.train_seconds, 1),
            "pairs_per_second": round(result.epoch_pairs / result.train_seconds, 2),
            "loss_first_fifth": round(sum(losses[:fifth]) / fifth, 4),
            "loss_last_fifth": round(sum(losses[-fifth:]) / fifth, 4), "peak_rss_mb": result.peak_rss_mb,
        }), flush=True)


if __name__ == "__main__":
    main()
