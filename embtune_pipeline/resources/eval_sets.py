"""Building an eval set from a query log (settings `eval_set_builder`), as a Dagster resource: the CLI's
`embtune eval-set build` uses it; its outside systems are the retrievers' models, the baselines' APIs and the
judge LLM."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from embtune_pipeline.resources.baselines import BaselineModels
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.settings import SettingsResource

JUDGMENTS_FILE, EVAL_SET_FILE = "judgments.sqlite", "eval_set.jsonl"


class EvalSetBuilder(dg.ConfigurableResource):
    settings: SettingsResource

    def workspace(self, name: str) -> Path:
        return self.settings.get().layout.eval_set_workspace(name)

    def eval_set_file(self, name: str) -> Path:
        """Where the eval set is exported: the file settings `eval_set` then reads."""
        return self.workspace(name) / EVAL_SET_FILE

    def read_log(self, path: Path | None = None, column: str | None = None):
        """The query log (default: eval_set_builder.queries) as lib.data.ingest.read_query_log reads it; bad
        rows fail or go to quarantine, as corpus.bad_rows says."""
        from embtune_pipeline.lib.data.ingest import read_query_log, settle_problems
        from embtune_pipeline.lib.errors import file_problem

        s = self.settings.get()
        b = s.eval_set_builder
        path = path or b.queries
        if path is None:
            raise ValueError("no query log: set eval_set_builder.queries, or give --queries")
        log, problems = read_query_log(Path(path), column or b.column)
        settle_problems(problems, s.corpus.bad_rows, s.layout.quarantine("query_log"))
        if log.empty:
            raise file_problem(path, "the query log holds no query")
        return log

    def retrievers(self, base_key: str, extra: list[str] = ()) -> dict[str, str]:
        """The models whose top candidates are pooled, {label: path}: the base model, the newest tuned one of it
        when its model is still on disk (its newest eval report names it), and any `extra` directories."""
        import json

        from embtune_pipeline.lib.models import resolve_model_path

        s = self.settings.get()
        models = {"base": str(resolve_model_path(s.base_model_ref(base_key)))}
        for report in reversed(s.layout.asset_partitions("eval_report", base_key)):
            model_dir = json.loads(report.read_text()).get("model_dir")
            if model_dir and Path(model_dir).is_dir():
                models["tuned"] = model_dir
                break
        return {**models, **{f"model {Path(m).name}": m for m in extra}}

    def judgments(self, name: str):
        """The eval set's pool and judgments (lib.evaluation.judgments.JudgmentStore)."""
        from embtune_pipeline.lib.evaluation.judgments import JudgmentStore

        return JudgmentStore(self.workspace(name) / JUDGMENTS_FILE)

    def build(self, name: str, log, chunks, documents, models: dict[str, str], embeddings: EmbeddingCache,
              baselines: BaselineModels, judge: str | None = None, reporter=None) -> dict:
        """Pool the log's queries (lib.evaluation.query_log) with `models` ({label: model path}), the baselines
        and BM25; judge the pool with the LLM unless the judge is 'human'; export the eval-set file. A rerun adds
        only what is new: vectors, pooled candidates and LLM answers are all kept."""
        from embtune_pipeline.lib.data.chunking import text_hash
        from embtune_pipeline.lib.data.ingest import HUMAN
        from embtune_pipeline.lib.embeddings import model_if_needed
        from embtune_pipeline.lib.evaluation.measure import agreement_texts, encode_with
        from embtune_pipeline.lib.evaluation.query_log import pool_queries, queries_to_judge
        from embtune_pipeline.lib.progress import SILENT

        s, reporter = self.settings.get(), reporter or SILENT
        b, embed = s.eval_set_builder, s.run.embed
        queries = queries_to_judge(log, b.max_queries)
        texts = queries["query"].tolist()
        needed = set(chunks["chunk_hash"]) | {text_hash(t) for t in texts}
        dense = {}
        for label, path in models.items():
            store = embeddings.for_model(path, embed.max_seq_length)
            model = model_if_needed(store, needed, path, embed.max_seq_length, embed.backend,
                                    agreement_texts(chunks, texts))
            dense[label] = encode_with(model, store, model, store, chunks, texts, embed.batch_size, reporter, label)
        for label, encoded, _ in baselines.encode(embeddings, chunks, texts, reporter):
            dense[f"baseline {label}"] = encoded
        store = self.judgments(name)
        try:
            added = store.add_pool(pool_queries(queries, chunks, documents, dense, b.pool_size))
            summary = {"queries": len(queries), "log_queries": len(log), "candidates_added": added,
                       "retrievers": [*dense, "bm25"]}
            judge = judge or b.judge
            if judge != HUMAN:
                summary.update(self._judge(store, judge, reporter))
            summary["export"] = store.export(self.eval_set_file(name))
        finally:
            store.close()
        summary["eval_set_file"] = str(self.eval_set_file(name))
        return summary

    def _judge(self, store, judge: str, reporter) -> dict:
        from embtune_pipeline.lib.evaluation.judging import DEFAULT_JUDGE_PROMPT, judge_candidates
        from embtune_pipeline.lib.queries.cache import AnswerCache

        s = self.settings.get()
        b = s.eval_set_builder
        cache = AnswerCache(s.layout.llm_cache)
        try:
            grades, stats = judge_candidates(
                store.pool(), judge, cache, (b.prompt_template or DEFAULT_JUDGE_PROMPT).read_text(), b.params,
                b.budget_usd, b.usd_per_million_tokens, b.max_passage_chars, None, b.concurrency,
                b.request_timeout_seconds, b.max_retry_seconds, b.max_failures, reporter)
        finally:
            cache.close()
        store.record_many([tuple(r) for r in grades[["query_id", "doc_id", "judge", "grade"]].itertuples(index=False)])
        return {"judge": judge, "judged": len(grades), **stats.as_metadata()}

