"""How far can an LLM-judged eval set be trusted? A BEIR collection's test queries are treated as an unjudged
search log: `embtune eval-set build` pools each query's candidates (base, tuned, baselines, BM25) and an LLM
judges them (default: the offline SmolLM2 through litellm). Then the LLM's judgments are set against the
collection's own human judgments.

    python benchmarks/judging.py BEIR_DIR --data-dir DIR [--queries 40] [--pool 10] [--judge smollm2]
                                 [--baselines YAML]

DIR: the data dir of a benchmarks/gain.py run (its --out/data): its tuned model (named by its newest eval report)
is pooled from and measured, and the base model's cached vectors are reused. Prints one JSON line:
- agreement: Cohen's kappa of relevance (grade >= 1) between the LLM and the collection's judgments on every
  pooled (query, document) pair; a pooled document the collection did not judge counts as not relevant, as BEIR
  scores it; also the LLM's grade counts and kappa with grade >= 2 as the cut;
- nDCG@10 of base and tuned, and the paired 95% CI of their difference, under the collection's judgments and
  under the LLM's, on the same queries.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)

NAME = "beir-test-queries"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=40, help="test queries taken (a stable sample)")
    ap.add_argument("--pool", type=int, default=10, help="candidates per query")
    ap.add_argument("--judge", default="smollm2", help="smollm2, or a litellm model string")
    ap.add_argument("--baselines", default="[]", help="settings `baselines` as YAML: pooled from and measured too")
    args = ap.parse_args()


    from embtune_pipeline.definitions import build_definitions
    from embtune_pipeline.lib.data.ingest import PairsSource, read_pairs
    from embtune_pipeline.lib.evaluation.evaluate import paired_comparison
    from embtune_pipeline.lib.evaluation.judgments import binary_agreement, llm_judge
    from embtune_pipeline.lib.queries.pairs import judged_eval_set

    # litellm's OpenAI client wants a key even for a local server that checks none
    os.environ.setdefault("OPENAI_API_KEY", "local-server-checks-no-key")
    data_dir = args.data_dir.resolve()
    qrels, _ = read_pairs(args.beir_dir, "beir", split="test")  # the people's judgments: not shown to the build
    log = data_dir.parent / f"{NAME}.txt"
    log.write_text("".join(q + "\n" for q in qrels.drop_duplicates("query_id")["query"]))
    settings = data_dir.parent / "judging-settings.yaml"
    settings.write_text(yaml.safe_dump({
        "data_dir": str(data_dir), "corpus": {"path": str(args.beir_dir.resolve()), "format": "beir"},
        "qa_pairs": None, "eval_set": None, "baselines": yaml.safe_load(args.baselines),
        "eval_set_builder": {"queries": str(log), "judge": args.judge, "pool_size": args.pool,
                             "max_queries": args.queries, "concurrency": 1}}))
    env = {**os.environ, "EMBTUNE_CONFIG": str(settings)}
    start = time.time()
    build = subprocess.run([str(Path(sys.executable).with_name("embtune")), "eval-set", "build", "--name", NAME],
                           env=env, text=True, capture_output=True)
    print(build.stdout, build.stderr[-4000:], file=sys.stderr)
    if build.returncode:
        sys.exit(build.returncode)
    build_seconds = time.time() - start

    defs = build_definitions(str(settings))
    builder, embeddings = defs.resources["eval_sets"], defs.resources["embeddings"]
    store = builder.judgments(NAME)
    pool, judged = store.pool(), store.judgments()
    store.close()
    judge = llm_judge(args.judge)
    grades = judged[judged["judge"] == judge].set_index(["query_id", "doc_id"])["grade"]
    qid_of = dict(zip(qrels["query"], qrels["query_id"]))
    relevant = set(zip(qrels.loc[qrels["score"] > 0, "query_id"], qrels.loc[qrels["score"] > 0, "doc_id"]))
    pairs = pool.assign(human=[(qid_of[q], d) in relevant for q, d in zip(pool["query"], pool["doc_id"])],
                        grade=[grades.get((q, d)) for q, d in zip(pool["query_id"], pool["doc_id"])])
    pairs = pairs[pairs["grade"].notna()]

    s = builder.settings.get()
    models = builder.retrievers(s.base_model_keys[0])
    source = defs.resources["corpus_source"]
    documents, _ = source.read_current()
    chunks, _ = source.chunk(documents, models["base"])
    pooled_queries = set(pool["query"])
    human_set = qrels[qrels["query"].isin(pooled_queries)].assign(eval_source="beir test qrels", synthetic=False)
    llm_set, _ = judged_eval_set(PairsSource(builder.workspace(NAME) / "eval_set.jsonl", "jsonl",
                                             score_column="score"), chunks, "error", data_dir / "q.jsonl", 10**6, 0)
    comparisons = {}
    for label, evals in (("human", human_set), ("llm", llm_set)):
        per_model = {name: embeddings.measure(path, s.run.embed.max_seq_length, chunks, evals,
                                              s.run.embed.batch_size).per_query for name, path in models.items()}
        shipped, _ = defs.resources["baselines"].measure(embeddings, chunks, evals)
        per_model.update({f"baseline {n}": pq for n, pq in shipped.groupby("baseline", sort=False)})
        c = paired_comparison(per_model["base"], per_model["tuned"]) if "tuned" in per_model else None
        comparisons[label] = {"queries": int(evals["query_id"].nunique()),
                              **{f"{n}_ndcg@10": round(float(pq["ndcg@10"].mean()), 4) for n, pq in per_model.items()},
                              **({"delta": round(c["delta"], 4), "ci": [round(c["ci_low"], 4), round(c["ci_high"], 4)]}
                                 if c else {})}
    print(json.dumps({
        "judge": args.judge, "queries": int(pool["query_id"].nunique()), "pool_size": args.pool,
        "pairs_judged": len(pairs), "unjudged": int(len(pool) - len(pairs)), "build_seconds": round(build_seconds),
        "retrievers": [*models, *(f"baseline {b.name}" for b in s.baselines), "bm25"],
        "human_relevant_in_pool": int(pairs["human"].sum()),
        "llm_grades": {str(g): int(n) for g, n in pairs["grade"].astype(int).value_counts().sort_index().items()},
        "agreement": _rounded(binary_agreement(pairs["human"], pairs["grade"] >= 1)),
        "agreement_grade_2_cut": _rounded(binary_agreement(pairs["human"], pairs["grade"] >= 2)),
        "ndcg@10": comparisons,
    }))


def _rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


if __name__ == "__main__":
    main()
