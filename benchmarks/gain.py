"""Run the whole pipeline, through Dagster, with the project's defaults, on any BEIR-layout directory.

    python benchmarks/gain.py BEIR_DIR --mode corpus-only|with-train-queries --out OUT_DIR [--set KEY=VALUE ...]

Evaluates on BEIR_DIR/qrels/test.tsv (or all.tsv when there is no test split). corpus-only trains on synthetic
queries alone; with-train-queries adds qrels/train.tsv as Q&A pairs. Saves the tuned model to OUT_DIR/model and
prints one JSON line: base and tuned nDCG@10, Recall@100, MRR@10, the training pairs (by source, and per
epoch), what the validation split chose, the wall time, the seconds each asset took, each asset's peak resident
memory (its step's own: see lib.memory) and the process's peak; with the serving exports (the default), the
int8 form's scores, its nDCG@10 minus the tuned model's, and docs/s of PyTorch, the fp32 export and int8.
`--set run.sample.sample_size=1000` overrides a settings value (dotted path).
`--teacher MODEL` distils a stronger model (an embedding API string, a local sentence-transformers directory or a
local cross-encoder) into the base; it is also measured on the eval set, as the baseline "teacher", so the JSON
line gives the teacher's scores beside the base's and the student's (`tuned`), and the share of the
teacher-base gap the student closed.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)

TEACHER_LABEL = "teacher"


def settings_for(beir_dir: Path, mode: str, out: Path, overrides: list[str], teacher: str | None = None) -> dict:
    qrels = beir_dir / "qrels"
    split = "test" if (qrels / "test.tsv").exists() else "all"
    settings = {
        "data_dir": str(out / "data"),
        "corpus": {"path": str(beir_dir), "format": "beir"},
        "eval_set": {"path": str(beir_dir), "format": "beir", "split": split},
        "qa_pairs": ({"path": str(beir_dir), "format": "beir", "split": "train"}
                     if mode == "with-train-queries" else None),
    }
    if mode == "with-train-queries" and not (qrels / "train.tsv").exists():
        sys.exit(f"{qrels / 'train.tsv'} not found: with-train-queries needs a train split")
    for item in overrides:
        key, _, value = item.partition("=")
        node = settings
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    if teacher:
        settings["teacher"] = teacher
        baselines = settings.get("baselines") or []
        settings["baselines"] = [*baselines, {"model": teacher, "label": TEACHER_LABEL}]
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--mode", choices=["corpus-only", "with-train-queries"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--teacher", help="a stronger model to distil into the base (see the settings' teacher:)")
    args = ap.parse_args()

    import dagster as dg

    from embtune_pipeline.definitions import build_definitions
    from embtune_pipeline.lib.memory import process_peak_rss_mb
    from embtune_pipeline.lib.training.record import read_model_record
    from embtune_pipeline.runner import execute_retune, register_snapshot
    from embtune_pipeline.settings import load_settings

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings_file = out / "settings.yaml"
    settings_file.write_text(yaml.safe_dump(settings_for(args.beir_dir.resolve(), args.mode, out, args.overrides,
                                                                str(Path(args.teacher).resolve())
                                                                if args.teacher and Path(args.teacher).is_dir()
                                                                else args.teacher)))

    start = time.time()
    s = load_settings(settings_file)
    instance = dg.DagsterInstance.ephemeral()
    snapshot = register_snapshot(instance, s)
    base = s.base_model_keys[0]
    # up to the report: the registry step needs no benchmark, and a model that fails the gate still has numbers
    result = execute_retune(build_definitions(str(settings_file)), instance, base, snapshot.key,
                            selection="*eval_report", raise_on_error=False)
    wall = time.time() - start

    seconds = {e.step_key: round(e.event_specific_data.duration_ms / 1000, 1)
               for e in result.all_events if e.is_step_success}
    peaks = {}  # each step's own peak resident memory, from its materialization's metadata (see lib.memory)
    teacher_check = None  # hard_negatives' label-free check of the teacher against the base
    for e in result.all_events:
        if e.is_step_materialization and "peak_rss_mb" in e.materialization.metadata:
            peaks[e.step_key] = e.materialization.metadata["peak_rss_mb"].value
        if e.is_step_materialization and "teacher_check" in e.materialization.metadata:
            teacher_check = e.materialization.metadata["teacher_check"].value
    report = s.layout.read_asset("eval_report", f"{base}|{snapshot.key}")
    if report is None:
        sys.exit(f"the run failed before eval_report (run {result.run_id}); see the log above")
    record = read_model_record(Path(report["model_dir"]))
    model_out = out / "model"
    if model_out.exists():
        shutil.rmtree(model_out)
    shutil.copytree(report["model_dir"], model_out)
    pick = ("ndcg@10", "recall@100", "mrr@10")
    print(json.dumps({
        **_teacher_scores(report, pick), **({"teacher_check": teacher_check} if teacher_check else {}),
        "beir_dir": str(args.beir_dir), "mode": args.mode, "eval": report["eval_set"],
        "base": {m: round(report["base"][m], 4) for m in pick},
        "tuned": {m: round(report["finetuned"][m], 4) for m in pick},
        "ndcg@10_delta_ci": [round(report["comparison"]["ci_low"], 4), round(report["comparison"]["ci_high"], 4)],
        "promotable": report["promotable"], "training_pairs": report.get("training_pairs"),
        "training_pairs_by_source": record.get("training_pairs_by_source"),
        "pairs_per_epoch": record.get("pairs_per_epoch"), "validation": record.get("validation"),
        "wall_seconds": round(wall, 1), "asset_seconds": seconds, "asset_peak_rss_mb": peaks,
        "peak_rss_mb": process_peak_rss_mb(), "model": str(model_out), **_serving(report.get("serving"), pick),
    }))


def _serving(serving, pick: tuple[str, ...]) -> dict:
    """The int8 export's scores and every form's docs/s, when eval_report made the serving exports."""
    if not serving or "skipped" in serving:
        return {"serving": serving} if serving else {}
    return {"int8": {m: round(serving["int8"][m], 4) for m in pick},
            "int8_ndcg@10_minus_tuned": round(serving["int8_ndcg@10_minus_tuned"], 4),
            "docs_per_s": serving["docs_per_s"], "int8_speedup_vs_torch": serving["int8_speedup_vs_torch"],
            "fastest_serving_form": serving["fastest"]["form"]}


def _teacher_scores(report: dict, pick: tuple[str, ...]) -> dict:
    """The teacher's scores on the eval set and the share of its gap over the base the student closed (none
    without a teacher)."""
    teacher = next((b for b in report.get("baselines", []) if b["name"] == TEACHER_LABEL), None)
    if teacher is None:
        return {}
    base, student, ndcg = report["base"]["ndcg@10"], report["finetuned"]["ndcg@10"], teacher["ndcg@10"]
    return {"teacher": {m: round(teacher["metrics"][m]["mean"], 4) for m in pick},
            "gap_closed": round((student - base) / (ndcg - base), 3) if ndcg != base else None,
            "student_minus_teacher": {k: round(teacher["vs_tuned"][k], 4) for k in ("delta", "ci_low", "ci_high")}}


if __name__ == "__main__":
    main()
