"""The tuned-vs-base comparison as a Markdown table, a PNG chart and a JSON document."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_doc_ids
from embtune_pipeline.lib.evaluation.evaluate import METRICS, compare_by_dim, paired_comparison, qrels_of, summarize
from embtune_pipeline.lib.evaluation.measure import Encoded


def signed(x: float, places: int = 4) -> str:
    """A difference with its sign, to the places that show it is not zero: 2e-5 is +0.00002, never +0.0000
    (a lower bound that reads as zero beside "better than its base" misleads)."""
    for p in range(places, 12):
        text = f"{x:+.{p}f}"
        if x == 0 or float(text) != 0:
            return text
    return f"{x:+.1e}"


def metric_label(metric: str, documents: int | None) -> str:
    """The metric's name, flagged where its k reaches the corpus size (every document is in the top k, so a
    recall@k of 1 there says nothing)."""
    k = int(metric.split("@")[1])
    if metric.startswith("recall@") and documents is not None and k >= documents:
        return f"{metric} (k ≥ the corpus's {documents} documents: always 1)"
    return metric


def comparison_rows(base: dict, tuned: dict, documents: int | None = None) -> list[dict]:
    """base/tuned: {dim label: {metric: {"mean", "ci_low", "ci_high"}}} -> one row per (dim, metric);
    `documents`, the corpus size, flags a metric whose k reaches it."""
    rows = []
    for dim in tuned:
        for m in METRICS:
            b, t = base[dim][m]["mean"], tuned[dim][m]["mean"]
            rows.append({"dim": dim, "metric": m, "label": metric_label(m, documents), "base": b, "tuned": t,
                         "change": (t - b) / b if b else float("nan"),
                         "base_ci": (base[dim][m]["ci_low"], base[dim][m]["ci_high"]),
                         "tuned_ci": (tuned[dim][m]["ci_low"], tuned[dim][m]["ci_high"])})
    return rows


def verdict(report: dict) -> str:
    """The promotion verdict in words, the same in the UI, the gate and the terminal: a model is promotable (it
    beats its base on real queries) or it is not, and the sentence says what happens to it."""
    return _verdict_on_base(report) + "".join(f"; {_against_baseline(b)}" for b in report.get("baselines", []))


def _verdict_on_base(report: dict) -> str:
    c = report["comparison"]
    figures = (f"nDCG@10 {signed(c['delta'])} vs base (95% CI {signed(c['ci_low'])} to {signed(c['ci_high'])}, "
               f"{c['queries']} queries)")
    if report["promotable"]:
        judge = report["eval_set"].get("llm_judge")
        warning = f" (judged by the LLM {judge}, not by people: check its agreement)" if judge else ""
        return f"promotable: beats its base on real queries{warning}, {figures}"
    if c["better"]:
        return (f"not promotable: better than its base on synthetic queries only, {figures}; registered as "
                "challenger, never champion (give real labelled queries in `eval_set` to prove a gain)")
    on = " on synthetic queries" if report["eval_set"]["synthetic"] else ""
    return f"not promotable: not better than its base{on}, {figures}; not registered"


def _against_baseline(b: dict) -> str:
    """Does the tuned model beat what the team would ship instead? The same paired interval as the gate's."""
    c = b["vs_tuned"]
    outcome = "beats" if c["better"] else ("loses to" if c["ci_high"] < 0 else "does not beat")
    return (f"the tuned model {outcome} baseline {b['name']} (nDCG@10 {b['ndcg@10']:.4f}): {signed(c['delta'])} "
            f"(95% CI {signed(c['ci_low'])} to {signed(c['ci_high'])})")


def interval(low: float, high: float) -> str:
    """A 95% interval as every table shows it: 0.5675–0.8396."""
    return f"{low:.4f}–{high:.4f}"


def comparison_records(rows: list[dict]) -> list[dict]:
    """The comparison as narrow rows (one per metric and model: base, tuned), numbers rounded, for a table the
    asset page shows inline. A dim column only when there are several (Matryoshka)."""
    several_dims = len({r["dim"] for r in rows}) > 1
    out = []
    for r in rows:
        for side in ("base", "tuned"):
            out.append({**({"dim": r["dim"]} if several_dims else {}), "metric": r["label"], "model": side,
                        "mean": round(r[side], 4), "95% CI": interval(*r[f"{side}_ci"]),
                        "vs base": f"{r['change']:+.1%}" if side == "tuned" else ""})
    return out


def baseline_records(report: dict) -> list[dict]:
    """The baselines as rows shaped like comparison_records' (at full dimension), for the same inline table."""
    base, full = report["base"], next(iter(report["by_dim"]))
    several_dims = len(report["by_dim"]) > 1
    return [{**({"dim": full} if several_dims else {}), "metric": m, "model": f"baseline {b['name']}",
             "mean": round(b["metrics"][m]["mean"], 4),
             "95% CI": interval(b["metrics"][m]["ci_low"], b["metrics"][m]["ci_high"]),
             "vs base": f"{(b['metrics'][m]['mean'] - base[m]) / base[m]:+.1%}" if base[m] else ""}
            for b in report.get("baselines", []) for m in METRICS]


def markdown_table(rows: list[dict], eval_kind: str, synthetic: bool, baselines: list[dict] = ()) -> str:
    lines = [f"Eval set: {eval_kind}.\n"]
    if synthetic:
        lines.append("> **Eval set is synthetic** (held-out generated queries): these figures flatter the tuned "
                     "model. Give real labelled queries (settings `eval_set`) to prove a gain.\n")
    lines += ["| dim | metric | base | tuned | change | tuned 95% CI |", "|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["tuned_ci"]
        lines.append(f"| {r['dim']} | {r['label']} | {r['base']:.4f} | {r['tuned']:.4f} | {r['change']:+.1%} "
                     f"| {lo:.4f}–{hi:.4f} |")
    if baselines:
        lines += ["", "What the team would ship instead (settings `baselines`), on the same queries and chunks:", "",
                  "| baseline | " + " | ".join(METRICS) + " | tuned minus baseline, nDCG@10 (95% CI) |",
                  "|---|" + "---|" * (len(METRICS) + 1)]
        for b in baselines:
            c = b["vs_tuned"]
            lines.append(f"| {b['name']} | " + " | ".join(f"{b['metrics'][m]['mean']:.4f}" for m in METRICS)
                         + f" | {signed(c['delta'])} ({signed(c['ci_low'])} to {signed(c['ci_high'])}) |")
    return "\n".join(lines)


def _errors(points: list[tuple[float, float, float]]) -> list[list[float]]:
    """matplotlib's yerr from (mean, low, high) points: distances from each mean down to its interval's low end
    and up to its high end."""
    return [[max(0.0, m - lo) for m, lo, _ in points], [max(0.0, hi - m) for m, _, hi in points]]


def chart_png(rows: list[dict], path: Path, title: str, baselines: list[dict] = ()) -> Path:
    """Base and tuned means per metric (one panel per dimension), each bar with its 95% bootstrap interval; the
    baselines beside them in the first (full-dimension) panel."""
    plt = _pyplot()
    dims = list(dict.fromkeys(r["dim"] for r in rows))
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims) + len(baselines), 3.9), squeeze=False)
    for panel, (ax, dim) in enumerate(zip(axes[0], dims)):
        sub = [r for r in rows if r["dim"] == dim]
        bars = [(side, [r[side] for r in sub], _errors([(r[side], *r[f"{side}_ci"]) for r in sub]))
                for side in ("base", "tuned")]
        if panel == 0:
            for b in baselines:
                m = [b["metrics"][r["metric"]] for r in sub]
                bars.append((f"baseline {b['name']}", [x["mean"] for x in m],
                             _errors([(x["mean"], x["ci_low"], x["ci_high"]) for x in m])))
        width = 0.8 / len(bars)
        for k, (label, means, errors) in enumerate(bars):
            ax.bar([i - 0.4 + width * (k + 0.5) for i in range(len(sub))], means, width=width, label=label,
                   yerr=errors, capsize=3)
        ax.set_xticks(list(range(len(sub))), [r["metric"] for r in sub])
        ax.set_ylim(0, 1.08)  # room above 1 for the intervals' caps
        ax.set_title(f"dim {dim} (error bars: 95% CI)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle(title)
    return _save(fig, path, rect=(0, 0.06, 1, 1))


def loss_curve_png(history: list[tuple[int, float]], validation: list[tuple[int, float]], path: Path,
                   saved=None) -> Path:
    """Training loss by step, and the validation nDCG@10 measured along the way (step 0: the base) on a second
    axis: where the loss still falls but validation stops rising, more training only overfits. `saved` (a
    lib.training.interpolation.SavedModel) is marked: the model the training kept, which may not be its last."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if history:
        ax.plot([s for s, _ in history], [v for _, v in history], marker=".", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if validation:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in validation], [v for _, v in validation], "o--", color="tab:orange",
                 label="validation nDCG@10")
        ax2.set_ylabel("validation nDCG@10")
        if saved is not None:
            ax2.plot([saved.step], [saved.score], "*", color="tab:red", markersize=14, label=saved.label)
    fig.legend(loc="lower center", ncol=3, fontsize=8, frameon=False)  # under the axes: never over a curve
    return _save(fig, path, rect=(0, 0.07, 1, 1))


def history_png(history, path: Path) -> Path:
    """The champion's and its base's nDCG@10 at each re-evaluation: a closing gap means it is time to re-tune."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    x = range(len(history))
    ax.plot(x, history["champion_ndcg@10"], marker="o", label="champion")
    ax.plot(x, history["base_ndcg@10"], marker="s", label="its base")
    ax.set_xticks(list(x), [str(t)[:10] for t in history["evaluated_at"]], rotation=30, fontsize=7)
    ax.set_ylabel("nDCG@10")
    ax.legend()
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, rect=(0, 0, 1, 1)) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
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


def evaluation_report(model: dict, eval_set: pd.DataFrame, chunks: pd.DataFrame, base: Encoded,
                      tuned: Encoded, base_full: pd.DataFrame, samples: int,
                      baselines: pd.DataFrame | None = None) -> dict:
    """Tuned vs base on one eval set, at full dimension and at each Matryoshka dimension the model trained: the
    JSON document (build_report). `base_full`: the base's per-query result measured before tuning;
    `baselines`: the baselines' per-query results (baseline_eval), each compared with the tuned model."""
    qids, _, gains = qrels_of(eval_set)
    base_by_dim, tuned_by_dim, comparison, tuned_full = compare_by_dim(
        base.query_vectors, base.corpus_vectors, tuned.query_vectors, tuned.corpus_vectors, base_full,
        chunk_doc_ids(chunks), qids, gains, model.get("matryoshka_dims"), samples)
    report = build_report(model, eval_set_info(eval_set), base_by_dim, tuned_by_dim, comparison,
                          str(base.corpus_vectors.shape[1]))
    report["baselines"] = baseline_comparisons(baselines, tuned_full, samples)
    report["documents"] = len({d for docs in chunk_doc_ids(chunks) for d in docs})
    return report


def baseline_comparisons(baselines: pd.DataFrame | None, tuned_full: pd.DataFrame, samples: int) -> list[dict]:
    """Each baseline's metrics, and the tuned model minus it on nDCG@10 with a paired bootstrap interval."""
    if baselines is None or baselines.empty:
        return []
    out = []
    for name, per_query in baselines.groupby("baseline", sort=False):
        metrics = summarize(per_query, samples)
        out.append({"name": str(name), "ndcg@10": metrics["ndcg@10"]["mean"], "metrics": metrics,
                    "vs_tuned": paired_comparison(per_query, tuned_full, "ndcg@10", samples)})
    return out


def eval_set_info(eval_set: pd.DataFrame) -> dict:
    """What the eval set is, as every report says it: its source, its size, and who judged it: `llm_judge`
    names the LLM when one judged any of its queries, with `llm_judged_queries`; `agreement` is people vs the
    LLM where both judged (Cohen's kappa)."""
    from embtune_pipeline.lib.evaluation.judgments import is_llm, llm_model

    info = {"source": eval_set["eval_source"].iloc[0], "synthetic": bool(eval_set["synthetic"].iloc[0]),
            "queries": int(eval_set["query_id"].nunique())}
    judges = eval_set.drop_duplicates("query_id")["judge"] if "judge" in eval_set else pd.Series(dtype=str)
    llm = judges[judges.map(is_llm)]
    if len(llm):
        info["llm_judge"] = ", ".join(sorted(llm_model(j) for j in llm.unique()))
        info["llm_judged_queries"] = int(len(llm))
    if "agreement_pairs" in eval_set and int(eval_set["agreement_pairs"].iloc[0]) > 0:
        info["agreement"] = {"kappa": float(eval_set["agreement_kappa"].iloc[0]),
                             "pairs": int(eval_set["agreement_pairs"].iloc[0])}
    return info


def report_rows(report: dict) -> list[dict]:
    """comparison_rows of a report document: one row per (dim, metric)."""
    by_dim = report["by_dim"]
    return comparison_rows({d: v["base"] for d, v in by_dim.items()}, {d: v["finetuned"] for d, v in by_dim.items()},
                           report.get("documents"))


def write_report_files(report: dict, directory: Path) -> tuple[Path, Path]:
    """The report for people: a Markdown table and a chart with 95% intervals (the JSON document is the
    eval_report asset itself). Returns (chart, table)."""
    rows = report_rows(report)
    synthetic = report["eval_set"]["synthetic"]
    directory.mkdir(parents=True, exist_ok=True)
    kind = "synthetic" if synthetic else "real"
    baselines = report.get("baselines", [])
    chart = chart_png(rows, directory / "eval_report.png",
                      f"{report['model_name']} vs its base, {report['eval_set']['queries']} {kind} queries", baselines)
    table = directory / "eval_report.md"
    table.write_text(markdown_table(rows, eval_kind(report["eval_set"]), synthetic, baselines) + "\n")
    return chart, table


def eval_kind(info: dict) -> str:
    """The eval set in words: synthetic queries, or real queries judged by people or by an LLM."""
    if info["synthetic"]:
        return f"synthetic queries (held out of the generated ones), {info['queries']} queries"
    judge = info.get("llm_judge")
    who = (f"judged by the LLM {judge} ({info['llm_judged_queries']} of them; the rest by people)"
           if judge and info["llm_judged_queries"] < info["queries"] else
           f"judged by the LLM {judge}" if judge else "judged by people")
    text = f"real queries {who}, {info['queries']} queries from {info['source']}"
    if "agreement" in info:
        a = info["agreement"]
        text += f"; people vs the LLM: Cohen's kappa {a['kappa']:.3f} on {a['pairs']} pairs both judged"
    return text


def report_metrics(report: dict) -> dict[str, float]:
    """The report's headline numbers as MLflow metrics of the training's run."""
    return {**{f"base_{m}": report["base"][m] for m in METRICS},
            **{f"tuned_{m}": report["finetuned"][m] for m in METRICS},
            "ndcg@10_delta_ci_low": report["comparison"]["ci_low"],
            **{f"baseline_{re.sub(r'[^A-Za-z0-9_.-]+', '_', b['name'])}_ndcg@10": b["ndcg@10"]
               for b in report.get("baselines", [])}}
