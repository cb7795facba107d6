"""How many LLM calls a re-tune pays after a small corpus change, at full scale.

    python benchmarks/incremental.py BEIR_DIR --out OUT_DIR [--changed 0.01] [--sample 5000]

Copies BEIR_DIR's corpus to OUT_DIR (the source is never modified), runs corpus -> synthetic_queries through
Dagster with a fake LLM that counts the calls reaching it, edits `--changed` of the documents, runs again as a
new snapshot partition, and prints one JSON line: calls of the full run, calls after the change, their ratio.
"""

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import yaml

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def counting_provider():
    import litellm

    class CountingLLM(litellm.CustomLLM):
        calls = 0

        def completion(self, *args, **kwargs):
            CountingLLM.calls += 1
            n = CountingLLM.calls
            return litellm.completion(model="gpt-4o-mini", messages=kwargs["messages"],
                                      mock_response=f"1. What does finding {n} show?\n2. Is claim {n} supported?")

    litellm.custom_provider_map = [*litellm.custom_provider_map,
                                   {"provider": "counting", "custom_handler": CountingLLM()}]
    return CountingLLM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--changed", type=float, default=0.01)
    ap.add_argument("--sample", type=int, default=5000)
    args = ap.parse_args()

    import dagster as dg

    from embtune_pipeline.definitions import build_definitions
    from embtune_pipeline.runner import execute_retune, register_snapshot
    from embtune_pipeline.settings import load_settings

    out = args.out.resolve()
    corpus_dir = out / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.beir_dir / "corpus.jsonl", corpus_dir / "corpus.jsonl")
    settings_file = out / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({
        "data_dir": str(out / "data"), "corpus": {"path": str(corpus_dir), "format": "beir"},
        "generator": {"model": "counting/fake", "concurrency": 4},
        "run": {"sample": {"sample_size": args.sample}, "generate": {"queries_per_chunk": 2}}}))
    llm = counting_provider()
    steps = ["corpus", "corpus_sample", "user_pairs", "synthetic_queries"]
    instance = dg.DagsterInstance.ephemeral()

    def run() -> dict:
        s = load_settings(settings_file)
        snapshot = register_snapshot(instance, s)
        result = execute_retune(build_definitions(str(settings_file)), instance, s.base_model_keys[0],
                                snapshot.key, selection=steps)
        meta = result.asset_materializations_for_node("synthetic_queries")[-1].metadata
        return {"snapshot": snapshot.key, "llm_calls": meta["llm_calls"].value, "cache_hits": meta["cache_hits"].value}

    start = time.time()
    full = run()
    full_calls = llm.calls
    lines = (corpus_dir / "corpus.jsonl").read_text().splitlines()
    rng = random.Random(0)
    edited = rng.sample(range(len(lines)), max(1, round(args.changed * len(lines))))
    for i in edited:
        doc = json.loads(lines[i])
        doc["text"] += " (Revised.)"
        lines[i] = json.dumps(doc)
    (corpus_dir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    llm.calls = 0
    after = run()
    print(json.dumps({"documents": len(lines), "edited_documents": len(edited), "sample": args.sample,
                      "full_run": {**full, "calls_reaching_llm": full_calls},
                      "after_change": {**after, "calls_reaching_llm": llm.calls},
                      "ratio": round(llm.calls / max(full_calls, 1), 4),
                      "wall_seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
