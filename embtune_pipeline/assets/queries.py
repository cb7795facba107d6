"""user_pairs, synthetic_queries -> eval_set -> training_pairs."""

import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import effective, optional_config, reporter, table_metadata, timed
from embtune_pipeline.lib.data.ingest import settle_problems
from embtune_pipeline.lib.evaluation.report import eval_kind, eval_set_info
from embtune_pipeline.lib.queries.enough import generate_enough
from embtune_pipeline.lib.queries.pairs import (
    USER_PAIR_COLUMNS,
    attach_targets,
    choose_eval_set,
    held_out,
    judged_eval_set,
    read_pairs_file,
    style_examples,
)
from embtune_pipeline.lib.queries.pairs import (
    training_pairs as build_training_pairs,
)
from embtune_pipeline.lib.queries.variety import vary_queries
from embtune_pipeline.lib.training.data import balanced_synthetic_draws
from embtune_pipeline.lib.training.validation import trains_balanced
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.llm import QueryGenerator
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import GenerateKnobs, Settings

GenerateConfig = optional_config(GenerateKnobs, "GenerateConfig")


@dg.asset(group_name="data", kinds={"pandas", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def user_pairs(settings: SettingsResource, corpus: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Real (query, positive) pairs from click logs and Q&A files, each with its source file and row."""
    s = settings.get()
    frames, meta = [], {}
    with timed(meta):
        for source, ps in (("click_logs", s.click_logs), ("qa_pairs", s.qa_pairs)):
            if ps is None:
                continue
            raw, problems = read_pairs_file(ps.source)
            pairs, unknown = attach_targets(raw, corpus, source)
            meta[f"{source}_pairs"] = len(pairs)
            meta[f"{source}_quarantined_rows"] = settle_problems(problems + unknown, s.corpus.bad_rows,
                                                            s.layout.quarantine(source))
            meta[f"{source}_file"] = str(ps.path)
            frames.append(pairs)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=USER_PAIR_COLUMNS)
    return dg.Output(result, metadata={**meta, **table_metadata(result)})


def _eval_file_queries(s: Settings) -> set[str]:
    """The queries of the eval set file, when one is configured."""
    return set(read_pairs_file(s.eval_set.source)[0]["query"]) if s.eval_set is not None else set()


def _prompt_metadata(generator) -> dict:
    """The prompt an LLM generator is given; the model-free one has none."""
    return {"prompt_template": str(generator.prompt_template)} if generator.uses_llm else {}


@dg.asset(group_name="data", kinds={"parquet", "litellm"}, partitions_def=RETUNE_PARTITIONS)
def synthetic_queries(context: dg.AssetExecutionContext, config: GenerateConfig, settings: SettingsResource,
                      generator: QueryGenerator, corpus_sample: pd.DataFrame,
                      user_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """N queries per sampled chunk, from the configured generator; filtered (lib.queries.filters). With balanced
    sources, only until there are as many as the epochs draw (metadata queries_needed, chunks_not_generated).

    LLM answers are cached on disk by (model, prompt): a rerun or a new snapshot pays only for new chunks."""
    s = settings.get()
    knobs = effective(s.run.generate, config)
    examples = style_examples(user_pairs, _eval_file_queries(s), s.generator.style_examples,
                              s.run.eval_split.holdout_fraction, s.run.eval_split.seed)
    needed = _synthetic_pairs_needed(s, user_pairs)
    meta: dict = {}
    with timed(meta):
        vocabulary = generator.vocabulary(corpus_sample, keys_of(context)[0])
        result = generate_enough(
            lambda chunks: generator.generate(chunks, knobs.queries_per_chunk, examples, reporter(context, s),
                                             ict_max_words=knobs.ict_max_words, vocabulary=vocabulary),
            corpus_sample, needed, knobs.queries_per_chunk, s.run.sample.seed, vocabulary)
        kept = vary_queries(result.kept, knobs.keyword_share, generator.query_kind, s.run.sample.seed)
    stats = result.stats
    meta.update({
        "generator": generator.model, **_prompt_metadata(generator),
        **{f"queries_{kind}": int(n) for kind, n in kept["kind"].value_counts().items()},
        "style_examples": len(examples), "queries_per_chunk": knobs.queries_per_chunk,
        "chunks_not_generated": len(corpus_sample) - result.chunks_asked, "queries_needed": needed or "all",
        "generated": result.generated, "kept": len(kept), **{f"rejected_{k}": v for k, v in result.rejects.items()},
        **stats.as_metadata(), **table_metadata(kept),
    })
    if stats.errors:
        meta["llm_errors"] = dg.MetadataValue.json(stats.errors)
    return dg.Output(kept, metadata=meta)


def _synthetic_pairs_needed(s: Settings, user_pairs: pd.DataFrame) -> int | None:
    """With sources balanced (real queries that validate, after the eval split takes its own), the synthetic
    pairs the epochs draw (lib.training.data.balanced_synthetic_draws); None, every one, otherwise. Decided by
    the settings' train knobs (a run's override of finetuned_model's knobs does not reach back here)."""
    train, split = s.run.train, s.run.eval_split
    real = user_pairs[user_pairs["score"] > 0]
    if s.eval_set is None:
        real = real[~real["query_id"].isin(held_out(real, split.holdout_fraction, split.seed)["query_id"])]
    if real.empty or not trains_balanced(train, real["query"], real["query"].notna()):
        return None
    return balanced_synthetic_draws(len(real), train.batch_size, train.epochs)


@dg.asset(group_name="data", kinds={"pandas", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def eval_set(settings: SettingsResource, corpus: pd.DataFrame, user_pairs: pd.DataFrame,
             synthetic_queries: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Labelled queries to measure on: real ones when configured; else held-out user pairs; else held-out
    synthetic queries, flagged as synthetic in every report.

    The split is a settings value (run.eval_split), not a per-run knob: synthetic_queries must know it too,
    to keep held-out queries out of the prompt's style examples."""
    s = settings.get()
    knobs = s.run.eval_split
    meta: dict = {"quarantined_rows": 0}
    with timed(meta):
        result = _build_eval_set(s, knobs, corpus, user_pairs, synthetic_queries, meta)
    if result.empty:
        raise ValueError("the eval set is empty: no labelled query points at a document of the corpus")
    synthetic = bool(result["synthetic"].iloc[0])
    meta.update({
        "source": result["eval_source"].iloc[0],
        "kind": eval_kind(eval_set_info(result)),
        "synthetic": synthetic,
        "queries": result["query_id"].nunique(),
        "judgments": len(result),
        **table_metadata(result),
    })
    if synthetic:
        meta["warning"] = "synthetic eval queries flatter a tuned model; configure eval_set with real queries"
    return dg.Output(result, metadata=meta)


def _build_eval_set(s: Settings, knobs, corpus, user_pairs, synthetic_queries, meta: dict) -> pd.DataFrame:
    if s.eval_set is not None:
        result, meta["quarantined_rows"] = judged_eval_set(s.eval_set.source, corpus, s.corpus.bad_rows,
                                                           s.layout.quarantine("eval_set"), knobs.max_queries,
                                                           knobs.seed)
        return result
    return choose_eval_set(user_pairs, synthetic_queries, corpus, knobs.holdout_fraction, knobs.max_queries,
                           knobs.min_real_queries, knobs.seed)


@dg.asset(group_name="data", kinds={"pandas", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def training_pairs(synthetic_queries: pd.DataFrame, user_pairs: pd.DataFrame, corpus: pd.DataFrame,
                   eval_set: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Synthetic, click-log and Q&A pairs with a provenance column; pairs whose query is an eval query dropped."""
    meta: dict = {}
    with timed(meta):
        pairs, counts = build_training_pairs(synthetic_queries, user_pairs, corpus, eval_set)
    if pairs.empty:
        raise ValueError("no training pairs: the generator produced nothing usable and there are no user pairs")
    by_source = pairs["source"].value_counts().to_dict()
    return dg.Output(pairs, metadata={
        **meta,
        **{f"dropped_{k}": v for k, v in counts.items()},
        "by_source": dg.MetadataValue.json({k: int(v) for k, v in by_source.items()}),
        **table_metadata(pairs),
    })
