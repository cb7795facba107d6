"""The tuned-vs-base comparison as a Markdown table, a PNG chart and a JSON document."""

from __future__ import annotations

from pathlib import Path

from embtune_pipeline.lib.evaluate import METRICS


def comparison_rows(base: dict, tuned: dict) -> list[dict]:
    """base/tuned: {dim label: {metric: {"mean", "ci_low", "ci_high"}}} -> one row per (dim, metric)."""
    rows = []
    for dim in tuned:
        for m in METRICS:
            b, t = base[dim][m]["mean"], tuned[dim][m]["mean"]
            rows.append({"dim": dim, "metric": m, "base": b, "tuned": t,
                         "change": (t - b) / b if b else float("nan"),
                         "tuned_ci": (tuned[dim][m]["ci_low"], tuned[dim][m]["ci_high"])})
    return rows


def markdown_table(rows: list[dict], synthetic: bool) -> str:
    lines = []
    if synthetic:
        lines.append("> **Eval set is synthetic** (held-out generated queries): these figures flatter the tuned "
                     "model. Give real labelled queries (settings `eval_set`) to prove a gain.\n")
    lines += ["| dim | metric | base | tuned | change | tuned 95% CI |", "|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["tuned_ci"]
        lines.append(f"| {r['dim']} | {r['metric']} | {r['base']:.4f} | {r['tuned']:.4f} | {r['change']:+.1%} "
                     f"| {lo:.4f}–{hi:.4f} |")
    return "\n".join(lines)


def chart_png(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = list(dict.fromkeys(r["dim"] for r in rows))
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 3.6), squeeze=False)
    for ax, dim in zip(axes[0], dims):
        sub = [r for r in rows if r["dim"] == dim]
        x = range(len(sub))
        ax.bar([i - 0.2 for i in x], [r["base"] for r in sub], width=0.4, label="base")
        ax.bar([i + 0.2 for i in x], [r["tuned"] for r in sub], width=0.4, label="tuned")
        ax.set_xticks(list(x), [r["metric"] for r in sub])
        ax.set_ylim(0, 1)
        ax.set_title(f"dim {dim}")
        ax.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def loss_curve_png(history: list[tuple[int, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    if history:
        ax.plot([s for s, _ in history], [v for _, v in history], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def build_report(model: dict, eval_info: dict, base_by_dim: dict, tuned_by_dim: dict, comparison: dict,
                 full_dim: str) -> dict:
    """The JSON document other tools read: base and tuned means at full dimension, every dim, the verdict."""
    return {
        "model_dir": model["model_dir"],
        "model_name": model["name"],
        "base_model": model["base_model"],
        "mlflow_run_id": model["mlflow_run_id"],
        "training_pairs": model["training_pairs"],
        "eval_set": eval_info,
        "base": {m: base_by_dim[full_dim][m]["mean"] for m in METRICS},
        "finetuned": {m: tuned_by_dim[full_dim][m]["mean"] for m in METRICS},
        "by_dim": {dim: {"base": base_by_dim[dim], "finetuned": tuned_by_dim[dim]} for dim in tuned_by_dim},
        "comparison": comparison,
        "promotable": bool(comparison["better"]) and not eval_info["synthetic"],
    }
