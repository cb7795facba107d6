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

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def the_partition(data: Path) -> str:
    """The one retune partition a gain.py run stored ("base|snapshot")."""
    found = sorted((data / "assets" / "finetuned_model").glob("*/*.json"))
    if len(found) != 1:
        raise SystemExit(f"expected one stored finetuned_model under {data / 'assets'}, found {found}")
    return f"{found[0].parent.name}|{found[0].stem}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--alpha", type=float, action="append", required=True)
    args = ap.parse_args()

    from embtune_pipeline.lib.evaluation.evaluate import paired_comparison, summarize
    from embtune_pipeline.lib.training.interpolation import interpolate_weights
    from embtune_pipeline.resources.embeddings import EmbeddingCache
    from embtune_pipeline.resources.settings import SettingsResource
    from embtune_pipeline.settings import load_settings

    out = args.out_dir.resolve()
    s = load_settings(out / "settings.yaml")
    partition = the_partition(s.layout.root)
    model, chunks, evals, base_pq = (s.layout.read_asset(a, partition)
                                     for a in ("finetuned_model", "corpus", "eval_set", "base_model_eval"))
    embeddings = EmbeddingCache(settings=SettingsResource.of(s))
    max_seq, batch = model["max_seq_length"], s.run.embed.batch_size
    for alpha in args.alpha:
        mixed = interpolate_weights(Path(model["base_model_path"]), Path(model["model_dir"]), alpha,
                                    out / f"interpolated-{alpha}")
        pq = embeddings.measure(mixed, max_seq, chunks, evals, batch).per_query
        summary = summarize(pq, 200)
        comparison = paired_comparison(base_pq, pq, "ndcg@10", 1000)
        print(json.dumps({"alpha": alpha, "base_ndcg@10": round(float(base_pq["ndcg@10"].mean()), 4),
                          **{m: round(v["mean"], 4) for m, v in summary.items()},
                          "ndcg@10_delta_ci": [round(comparison["ci_low"], 4), round(comparison["ci_high"], 4)]}),
              flush=True)


if __name__ == "__main__":
    main()
