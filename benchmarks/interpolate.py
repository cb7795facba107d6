"""The WiSE-FT lever, measured on a finished gain.py run: mix base and tuned weights, evaluate each mix.

    python benchmarks/interpolate.py OUT_DIR --alpha 0.5 [--alpha 0.7 ...]

OUT_DIR is a gain.py output folder. Each alpha's model (weights (1 - alpha) * base + alpha * tuned) is
evaluated on the same eval set and chunked corpus the run used, against the run's own base per-query results,
and one JSON line per alpha is printed. This measures the lever on the eval queries; it must not pick the
pipeline's ratio (that choice belongs to a validation split carved from training data).
"""

import argparse
import json
from pathlib import Path

import pandas as pd

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def stored(data: Path, asset: str, suffix: str) -> Path:
    found = sorted((data / "assets").glob(f"{asset}/*/*{suffix}")) or sorted((data / "assets").glob(f"{asset}{suffix}"))
    if len(found) != 1:
        raise SystemExit(f"expected one stored {asset} under {data / 'assets'}, found {found}")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--alpha", type=float, action="append", required=True)
    args = ap.parse_args()

    from embtune_pipeline.assets._common import model_store
    from embtune_pipeline.lib.embeddings import measure_model
    from embtune_pipeline.lib.evaluation.evaluate import paired_comparison, summarize
    from embtune_pipeline.lib.training.train import interpolate_weights
    from embtune_pipeline.settings import load_settings

    out = args.out_dir.resolve()
    s = load_settings(out / "settings.yaml")
    data = out / "data"
    model = json.loads(stored(data, "finetuned_model", ".json").read_text())
    chunks = pd.read_parquet(stored(data, "corpus", ".parquet"))
    evals = pd.read_parquet(stored(data, "eval_set", ".parquet"))
    base_pq = pd.read_parquet(stored(data, "base_model_eval", ".parquet"))
    max_seq, batch = model["max_seq_length"], s.run.embed.batch_size
    for alpha in args.alpha:
        mixed = interpolate_weights(Path(model["base_model_path"]), Path(model["model_dir"]), alpha,
                                    out / f"interpolated-{alpha}")
        store = model_store(s, mixed, max_seq)
        pq = measure_model(mixed, max_seq, store, chunks, evals, batch)
        summary = summarize(pq, 200)
        comparison = paired_comparison(base_pq, pq, "ndcg@10", 1000)
        print(json.dumps({"alpha": alpha, "base_ndcg@10": round(float(base_pq["ndcg@10"].mean()), 4),
                          **{m: round(v["mean"], 4) for m, v in summary.items()},
                          "ndcg@10_delta_ci": [round(comparison["ci_low"], 4), round(comparison["ci_high"], 4)]}),
              flush=True)


if __name__ == "__main__":
    main()
