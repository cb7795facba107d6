"""The settings' schema: every section, every knob and its default, validated (pydantic). Defaults live here
and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embtune_pipeline.lib.encoders import BACKENDS
from embtune_pipeline.lib.queries import ICT_MAX_WORDS
from embtune_pipeline.settings.layout import Layout

CONFIG_ENV = "EMBTUNE_CONFIG"
DATA_DIR_ENV = "EMBTUNE_DATA_DIR"
TRACKING_URI_ENV = "EMBTUNE_MLFLOW_TRACKING_URI"  # not MLflow's own: mlflow.set_tracking_uri() rewrites that one

DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file and the key."""


def base_model_key(ref: str) -> str:
    """A base model's partition key: the last path part, lower-case, [a-z0-9-] only."""
    return re.sub(r"[^A-Za-z0-9]+", "-", ref.rstrip("/").split("/")[-1]).strip("-").lower() or "model"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


TableFormat = Literal["jsonl", "parquet", "csv"]


def _refuse_secrets(section: str, **params: dict) -> None:
    from embtune_pipeline.lib.secrets import secret_keys

    for name, value in params.items():
        secret = secret_keys(value)
        if secret:
            raise ValueError(f"{section}.{name} {secret} look like secrets: set them in the environment "
                             "(e.g. OPENAI_API_KEY), never in the settings file")


class CorpusSettings(_Strict):
    path: Optional[Path] = None
    format: Literal["beir", "jsonl", "parquet", "csv", "dir", "python-docs"] = Field(description=(
        "dir: a folder of .txt, .md, .markdown, .html and .htm files, subfolders included, hidden ones skipped; "
        "each file a document whose id is its path under the folder and whose title is its own (Markdown front "
        "matter title or first # heading, HTML <title> or first <h1>) else its file name; Markdown and HTML "
        "markup is removed before chunking. jsonl, parquet, csv: a row a document (id_column, title_column, "
        "text_column). beir: a BEIR folder (corpus.jsonl, with its queries and qrels). python-docs: the demo"))
    id_column: Optional[str] = Field(None, description="default: _id for beir, id otherwise")
    title_column: Optional[str] = "title"
    text_column: str = "text"
    chunk_tokens: int = Field(240, ge=16, description="chunk length in tokens, title included; keep it below "
                              "run.embed.max_seq_length so no chunk is cut when embedded")
    chunk_overlap: int = Field(32, ge=0)
    tokenizer: Optional[str] = Field(None, description="model name or directory; default: the base model")
    max_document_chars: int = Field(1_000_000, ge=0, description="a longer document is a bad row (named, or "
                                     "quarantined): one huge file would crowd out the rest of the sample; 0: no limit")
    bad_rows: Literal["error", "quarantine"] = Field(
        "error", description="error: fail naming file and row; quarantine: set the row aside and count it"
    )
    modules: list[str] = Field(
        default_factory=list, description="python-docs only: stdlib modules to document (default: a set)"
    )

    @model_validator(mode="after")
    def _check(self):
        if self.format != "python-docs" and self.path is None:
            raise ValueError(f"corpus.path is required for format {self.format!r}")
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("corpus.chunk_overlap must be smaller than corpus.chunk_tokens")
        return self

    def tokenizer_of(self, base_model: str) -> str:
        """The tokenizer the corpus is chunked with for `base_model`: corpus.tokenizer, else the base model's."""
        return self.tokenizer or base_model

    @property
    def id_col(self) -> str:
        return self.id_column or ("_id" if self.format == "beir" else "id")


class PairsSettings(_Strict):
    """A file of (query, target) rows: click logs, Q&A pairs, or labelled eval queries.

    ``format: beir`` reads ``queries.jsonl`` and ``qrels/<split>.tsv`` from the directory ``path``.
    A target is a corpus document (``doc_id_column``) or, for Q&A pairs, the answer text itself.
    """

    path: Path
    format: Optional[Literal["beir", "jsonl", "parquet", "csv"]] = Field(None, description="default: from suffix")
    split: str = Field("train", description="beir only: the qrels file name")
    query_column: str = "query"
    doc_id_column: Optional[str] = "doc_id"
    answer_column: Optional[str] = None
    score_column: Optional[str] = None

    @property
    def source(self):
        """This section as the plain value lib reads pairs files from."""
        from embtune_pipeline.lib.data.ingest import PairsSource

        return PairsSource(self.path, self.resolved_format, self.split, self.query_column, self.doc_id_column,
                           self.answer_column, self.score_column)

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        if self.path.is_dir():
            return "beir"
        suffix = self.path.suffix.lower().lstrip(".")
        return {"jsonl": "jsonl", "json": "jsonl", "parquet": "parquet", "csv": "csv"}.get(suffix, suffix)


class _HostedCallSettings(_Strict):
    """How long one call to a hosted model (an LLM, an embedding API) may take and be retried: the same knobs,
    stated once, wherever such calls are made."""

    request_timeout_seconds: float = Field(60, gt=0, description="one request gives up after this long")
    max_retry_seconds: float = Field(300, ge=0, description="rate limits and server errors are retried with "
                                     "backoff (Retry-After honoured) for at most this long per call")


class _LLMCallSettings(_HostedCallSettings):
    """A step that makes many LLM calls: how many at once, and the share that may fail before the step does."""

    concurrency: int = Field(4, ge=1, description="LLM calls in flight at once")
    max_failures: float = Field(0.1, ge=0, le=1, description="fraction of failed LLM calls that fails the step; "
                                "once more than this share of the calls made so far have failed (after the first "
                                "10), the step stops asking and fails, naming the provider and its last error")


class GeneratorSettings(_LLMCallSettings):
    model: str = Field(
        "ict",
        description="'ict' (model-free, offline), 'smollm2' (local LLM, optional install), or a litellm model string",
    )
    params: dict = Field(default_factory=dict, description="passed to litellm.completion (temperature, api_base...)")
    query_style: str = Field("questions", pattern="^(questions|claims)$", description="an LLM's queries: the "
                             "bundled prompt for questions, or for claims (statements to find evidence for); "
                             "model-free ICT cuts claim-like sentences whatever this says")
    prompt_template: Optional[Path] = Field(None, description="default: the bundled prompt of query_style")
    style_examples: int = Field(5, ge=0, description="real user queries shown in the prompt, when there are any")

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets("generator", params=self.params)
        return self


class BaselineSettings(_HostedCallSettings):
    """A model the team would ship instead of tuning, measured on the same eval set and chunked corpus as base
    and tuned. A plain string in the list is short for {model: ...}."""

    model: str = Field(description="a litellm embedding model (openai/text-embedding-3-small, "
                       "cohere/embed-english-v3.0, voyage/voyage-3, openai/<name> with params.api_base for a "
                       "self-hosted OpenAI-compatible server) or a local sentence-transformers directory")
    label: Optional[str] = Field(None, description="its name in reports; default: the model string or directory")
    params: dict = Field(default_factory=dict, description="passed to litellm.embedding (api_base, dimensions, "
                         "input_type...); keys come from the environment only (OPENAI_API_KEY...)")
    query_params: dict = Field(default_factory=dict, description="added to params for queries only, e.g. "
                               "{input_type: search_query} for Cohere and Voyage")
    batch_size: int = Field(64, ge=1, description="texts per request")
    usd_per_million_tokens: Optional[float] = Field(None, ge=0, description="its price, when litellm's cost map "
                                                    "lacks the model (0 for a self-hosted server)")

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets("baselines", params=self.params, query_params=self.query_params)
        return self

    @property
    def is_local(self) -> bool:
        return Path(self.model).is_dir()

    @property
    def name(self) -> str:
        return self.label or (Path(self.model).name if self.is_local else self.model)


class TeacherSettings(BaselineSettings):
    """A model stronger on the domain than the base, distilled into it: its relevance scores label each training
    row (a distillation loss), it filters false negatives and off-target synthetic queries when mining, and a
    local bi-encoder teacher is the GIST guide. A plain string is short for {model: ...}."""

    kind: Literal["auto", "bi-encoder", "cross-encoder"] = Field(
        "auto", description="auto: an API model or a local directory is a bi-encoder unless its "
        "config_sentence_transformers.json says CrossEncoder")
    budget_usd: float = Field(5.0, ge=0, description="the most a run may spend on the teacher's API (estimated "
                              "before any call, only for texts not cached); above it the step refuses and calls "
                              "nothing")

    @property
    def is_cross_encoder(self) -> bool:
        if self.kind != "auto":
            return self.kind == "cross-encoder"
        config = Path(self.model) / "config_sentence_transformers.json"
        return self.is_local and config.is_file() and '"CrossEncoder"' in config.read_text()


class EvalSetBuilderSettings(_LLMCallSettings):
    """`embtune eval-set build`: an eval set from real queries without judgments (a search log). Each query's
    candidates are pooled from the base model, the newest tuned one, the baselines and BM25, then judged by an
    LLM (`judge`), by people (`embtune label`), or both."""

    queries: Optional[Path] = Field(None, description="the query log: a text file (a query a line) or a CSV, "
                                    "JSONL or Parquet file; `embtune eval-set build --queries` overrides it")
    column: str = Field("query", description="the queries' column in a CSV, JSONL or Parquet log")
    judge: str = Field("human", description="'human' (people judge in `embtune label`; no LLM), 'smollm2' (the "
                       "local LLM, optional install), or a litellm chat model string")
    params: dict = Field(default_factory=dict, description="passed to litellm.completion (api_base...); no keys")
    prompt_template: Optional[Path] = Field(None, description="$query and $passage; default: the bundled graded "
                                            "relevance prompt (0-3)")
    pool_size: int = Field(10, ge=1, description="candidates per query, taken in turn from each retriever's top")
    max_queries: int = Field(200, ge=1, description="queries taken from the log (a stable sample when it has more)")
    max_passage_chars: int = Field(2000, ge=100, description="a candidate's text is cut here in the prompt")
    budget_usd: float = Field(1.0, ge=0, description="the most one build may spend on judge calls (estimated "
                              "before the first, for answers not cached); above it nothing is called")
    usd_per_million_tokens: Optional[float] = Field(None, ge=0, description="the judge's price when litellm's "
                                                    "cost map lacks it (0 for a self-hosted server)")

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets("eval_set_builder", params=self.params)
        return self


class MlflowSettings(_Strict):
    tracking_uri: Optional[str] = Field(None, description="an MLflow server (http://...) or store; default: a "
                                        f"sqlite store under data_dir. {TRACKING_URI_ENV} overrides it")
    experiment: str = "embtune"
    ui_url: str = Field("http://127.0.0.1:5000", description="where `mlflow ui` serves, for run links")


class SampleKnobs(_Strict):
    sample_size: int = Field(5000, ge=1)
    seed: int = 0


class GenerateKnobs(_Strict):
    queries_per_chunk: int = Field(3, ge=1)
    keyword_share: float = Field(0.0, ge=0, le=1, description="share of the generated queries turned into keyword "
                                 "queries (their content words, as typed in a search box), a stable draw; real logs "
                                 "mix questions, claims and keywords")
    ict_max_words: int = Field(ICT_MAX_WORDS, ge=4, description="model-free (ict) queries: a sentence of the "
                               "chunk cut to at most this many words (a random run of them); shorter cuts are "
                               "harder and more like typed queries")


class EvalSplitKnobs(_Strict):
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="held out of user or synthetic pairs")
    max_queries: int = Field(1000, ge=1)
    min_real_queries: int = Field(20, ge=1, description="without an eval_set file, held-out user queries make the "
                                  "eval set when there are at least this many (fewer measure nothing); else "
                                  "held-out synthetic queries do, flagged as synthetic")
    seed: int = 0


class MiningKnobs(_Strict):
    rank_start: int = Field(10, ge=0, description="skip the very top: often unlabelled positives")
    rank_end: int = Field(50, ge=1)
    relative_margin: float = Field(0.05, ge=0, lt=1, description="drop candidates scored above (1-m)*positive")
    negatives_per_query: int = Field(1, ge=0)
    round_trip_k: int = Field(0, ge=0, description="keep a synthetic query only if its own document is in the "
                              "base model's top k for it; 0 keeps all")
    approximate_above_chunks: int = Field(200_000, ge=0, description="a corpus of more chunks is mined through "
                                          "an HNSW index (approximate), built once per base model and snapshot "
                                          "and kept beside its vectors; at most this many: an exact scan")
    seed: int = 0

    @model_validator(mode="after")
    def _window(self):
        if self.rank_start >= self.rank_end:
            raise ValueError(f"rank_start ({self.rank_start}) must be below rank_end ({self.rank_end})")
        return self


class TrainKnobs(_Strict):
    epochs: float = Field(3.0, gt=0, description="an upper bound: the validation split picks the checkpoint")
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(3e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    matryoshka_dims: list[int] = Field(default_factory=list, description="e.g. [384, 256, 128, 64]; [] = off")
    loss: str = Field("auto", pattern="^(auto|mnrl|gist)$", description="mnrl: MultipleNegativesRankingLoss; "
                      "gist: GISTEmbedLoss, the base model (or a local bi-encoder teacher) as guide against false "
                      "negatives; auto: gist for corpus-only training (synthetic pairs alone, where MNRL lost to "
                      "the base on SciFact and GIST levelled it), mnrl with real pairs")
    mini_batch_size: int = Field(0, ge=0, description="> 0: the cached (GradCache) loss, the same gradients "
                                 "computed this many texts at a time, so peak memory no longer grows with "
                                 "batch_size (about half the memory at batch 32 and 256 tokens), at the cost of a second forward pass and of "
                                 "bfloat16, which "
                                 "its re-computation runs without; 0: the whole batch in one pass")
    precision: str = Field("auto", pattern="^(auto|fp32|bf16|fp16)$", description="the trainer's mixed precision. "
                           "auto: bf16 where the hardware computes in it (a GPU that supports it, else fp16; a CPU "
                           "with AVX512-BF16 or AMX, where it trains faster a step at the same quality), fp32 elsewhere")
    corpus_only_max_pairs: int = Field(2000, ge=0, description="without real training pairs (corpus-only), a "
                                       "step budget: training stops after this many pairs, whichever comes first "
                                       "with epochs, and synthetic pairs beyond it are not mined or scored. "
                                       "Synthetic-only training plateaus early, and MiniLM trains about 1.6 pairs/s "
                                       "at 256 tokens on 2 CPU cores (2000: about 20 minutes). With real pairs, the "
                                       "epochs and the validation split decide; 0: no limit")
    distill_loss: str = Field(
        "batch_kl", pattern="^(batch_kl|kl|margin_mse)$", description="with a teacher: batch_kl, listwise KL over "
        "every passage in the batch, from a bi-encoder teacher's vectors (a cross-encoder teacher falls back to "
        "kl); kl, DistillKLDivLoss over each row's positive and negatives; margin_mse, MarginMSELoss on the "
        "teacher's positive-minus-negative margins")
    distill_weight: float = Field(1.0, ge=0, le=1, description="with a teacher: the distillation loss's share, "
                                  "the contrastive loss (MNRL) taking the rest. 1: distillation alone, the "
                                  "teacher's judgment instead of the synthetic pairs' labels (contrastive training "
                                  "on synthetic pairs alone lost to the base on SciFact); 0: the teacher only mines "
                                  "and filters")
    distill_temperature: float = Field(0.05, gt=0, description="batch_kl and kl: the student's cosine scores are "
                                       "divided by this (0.05, the contrastive loss's scale of 20), and the "
                                       "teacher's scores too")
    processes: int = Field(1, ge=1, description="> 1: data-parallel training in this many processes under "
                           "torchrun (one per GPU with NCCL; gloo on CPU), batch_size being the global batch; the "
                           "step still makes one model and one MLflow run")
    balance_sources: bool = Field(True, description="when real queries validate, each epoch takes as many "
                                  "synthetic pairs as real ones (a fresh draw each epoch) instead of all of them")
    lora: bool = False
    lora_rank: int = Field(16, ge=1)
    save_steps: int = Field(200, ge=1, description="checkpoint at least every N steps; a rerun resumes from the "
                            "last (with a validation split, each validation is a checkpoint: validations then "
                            "come at least this often too)")
    keep_checkpoints: bool = Field(False, description="keep the checkpoints after a successful run (they are "
                                   "deleted once the model is saved: several hundred MB a run)")
    seed: int = 0
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="share of training queries held out to pick "
                                       "the checkpoint and WiSE-FT ratio (real queries when there are enough); "
                                       "0 turns selection off")
    validation_max_queries: int = Field(200, ge=1)
    validation_min_queries: int = Field(20, ge=1, description="fewer held-out queries than this: no selection, "
                                        "the last checkpoint is kept")
    validation_corpus_size: int = Field(1000, ge=10, description="documents the validation queries rank: their "
                                        "positives and negatives plus distractors from the training rows")
    evaluations_per_epoch: int = Field(2, ge=1, description="validation scores per epoch; each is a checkpoint")
    interpolation_alphas: list[float] = Field(
        default_factory=lambda: [1.0, 0.75, 0.5], description="WiSE-FT ratios scored on the validation split "
        "(1 = the tuned weights, 0 = the base); the best is saved")

    @model_validator(mode="after")
    def _alphas(self):
        bad = [a for a in self.interpolation_alphas if not 0 <= a <= 1]
        if bad:
            raise ValueError(f"interpolation_alphas must lie in [0, 1]: {bad}")
        return self


class EmbedKnobs(_Strict):
    max_seq_length: int = Field(256, ge=8, description="the same in mining, training and every evaluation")
    batch_size: int = Field(64, ge=1)
    backend: str = Field("auto", pattern=f"^({'|'.join(BACKENDS)})$", description="what encodes for mining and "
                         "evaluation (training is always PyTorch): the model exported to ONNX and run by OpenVINO "
                         "or ONNX Runtime, once its vectors agree with PyTorch's (cosine >= 0.999 on sample texts); "
                         "auto: OpenVINO on a CPU when it agrees (several times PyTorch's speed on a CPU with bfloat16), "
                         "else PyTorch (always on a GPU)")
    shard_chunks: int = Field(100_000, ge=1, description="base_corpus_embeddings encodes the chunks it lacks in "
                              "shards of this many, each a step of its own (side by side under the multiprocess "
                              "or k8s executor: a pod each)")


class EvalKnobs(_Strict):
    bootstrap_samples: int = Field(1000, ge=100)
    serving_export: bool = Field(True, description="export the tuned model to ONNX and int8 beside it (its "
                                 "onnx/ folder, logged with the MLflow run its registered version points to), and "
                                 "measure the int8 export on the eval set: one more encoding of the eval corpus, "
                                 "at int8's speed")


class RetuneSettings(_Strict):
    """When a corpus change is worth a re-tune (the corpus_change_sensor reads these)."""

    min_changed_fraction: float = Field(0.02, ge=0, le=1, description="share of documents added, removed or "
                                        "edited since the last registered snapshot before a re-tune is requested")
    sensor_interval_seconds: int = Field(3600, ge=30, description="how often the sensor reads the corpus")


class GateSettings(_Strict):
    """The checks' gates: "is fine-tuning worth it here?" (each condition reported with its numbers), and
    whether this is a trial whose limits are chosen on purpose."""

    min_documents: int = Field(10000, ge=0, description="below this, a tuned model rarely generalizes")
    baseline_target: float = Field(0.9, ge=0, le=1, description="base nDCG@10 above which tuning is not needed")
    trial: bool = Field(False, description="true: a trial run (the demo), its small corpus and, without real "
                        "queries, its synthetic eval set chosen on purpose: the checks that flag them "
                        "(eval_set_is_real, tuning_is_worth_it, promotion_gate) pass with a note instead of "
                        "failing. A model is still never promoted on a synthetic eval set (it is registered as "
                        "challenger), and one not better than its base still fails the promotion gate and is not "
                        "registered")


class MonitoringSettings(_Strict):
    """The quarterly re-evaluation of the champion against its base."""

    eval_set: Optional[PairsSettings] = Field(None, description="fresh labelled queries; default: eval_set")
    cron: str = "0 6 1 1,4,7,10 *"
    timezone: str = "UTC"
    min_lead: float = Field(0.01, ge=0, description="warn when the champion's nDCG@10 lead over its base "
                            "falls below this")
    max_drop: float = Field(0.02, ge=0, description="error when the champion's nDCG@10 falls more than this "
                            "below its previous measurement")


class RegistrySettings(_Strict):
    model_name: str = Field("embtune", description="the MLflow registered model every version goes to")


class KubernetesSettings(_Strict):
    """With `executor: k8s`, dagster-k8s's k8s_job_executor runs each step in its own pod (pip install
    "embtune[k8s]"); these say what the pods get. Secrets reach pods only as Kubernetes Secrets named here."""

    image: Optional[str] = Field(None, description="the step pods' image; default: the code location's image "
                                 "(the Helm chart's user deployment sets it)")
    namespace: Optional[str] = Field(None, description="default: the run launcher's namespace")
    gpu_steps: list[str] = Field(default_factory=lambda: ["finetuned_model"], description="steps whose pod "
                                 "requests GPUs, by op name (add encode_corpus_shard, eval_report to encode on GPU)")
    gpus_per_step: int = Field(1, ge=1, description="nvidia.com/gpu requested by each GPU step's pod")
    gpu_node_selector: dict[str, str] = Field(default_factory=dict, description="GPU steps' node selector, "
                                              "e.g. {cloud.google.com/gke-accelerator: nvidia-l4}")
    gpu_tolerations: list[dict] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        description="GPU steps' tolerations (Kubernetes field names in snake_case)")
    step_resources: dict = Field(default_factory=dict, description="every step pod's container resources, e.g. "
                                 "{requests: {cpu: '2', memory: 8Gi}}")
    env_secrets: list[str] = Field(default_factory=list, description="Kubernetes Secrets whose keys become "
                                   "every step pod's environment (API keys): names only, never values")


INDEX_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class IndexSettings(_Strict):
    """A vector index built from the corpus snapshot with a registered model version (the vector_index asset,
    one partition per index): each build is a new table, checked, then the index's pointer moves to it."""

    name: str = Field(pattern=INDEX_NAME, description="the index's name (lower-case letters, digits, - and _): "
                      "its partition key, and what `embtune index` and serving.open_index take")
    uri: Optional[str] = Field(None, description="where its tables live: a folder, or any URI LanceDB accepts "
                               "(s3://bucket/prefix, gs://...); default: data_dir/indexes/<name>/tables")
    rollout: Literal["auto", "manual"] = Field("manual", description="auto: rebuilt for the new champion as "
                                               "soon as it changes (vector_index_rollout_sensor), and moved back by "
                                               "`embtune rollback`; manual: `embtune index build NAME`")
    keep: int = Field(2, ge=0, description="tables kept besides the current one (for `embtune index rollback`)")
    ann_above_rows: int = Field(100_000, ge=0, description="a table of more rows gets an approximate (ANN) "
                                "index, its top-10 overlap with exact search reported; at most this many: exact "
                                "search")


class RunDefaults(_Strict):
    """Defaults for the per-run knobs; a run's Dagster config overrides any of them (except eval_split, which
    two assets must agree on, so it is set here only)."""

    sample: SampleKnobs = Field(default_factory=SampleKnobs)
    generate: GenerateKnobs = Field(default_factory=GenerateKnobs)
    eval_split: EvalSplitKnobs = Field(default_factory=EvalSplitKnobs)
    embed: EmbedKnobs = Field(default_factory=EmbedKnobs)
    mining: MiningKnobs = Field(default_factory=MiningKnobs)
    train: TrainKnobs = Field(default_factory=TrainKnobs)
    evaluate: EvalKnobs = Field(default_factory=EvalKnobs)


class Settings(_Strict):
    data_dir: Path = Path("embtune-data")
    corpus: CorpusSettings
    click_logs: Optional[PairsSettings] = None
    qa_pairs: Optional[PairsSettings] = None
    eval_set: Optional[PairsSettings] = None
    base_models: list[str] = Field(
        default_factory=lambda: [DEFAULT_BASE_MODEL], min_length=1,
        description="model names or directories; each is a partition. `base_model: X` is accepted as another "
        "spelling of `base_models: [X]`")
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    eval_set_builder: EvalSetBuilderSettings = Field(default_factory=EvalSetBuilderSettings)
    baselines: list[BaselineSettings] = Field(
        default_factory=list, description="what the team would ship instead of tuning (an embedding API or a "
        "local model): measured beside base and tuned in the report, the gate and the verdict")
    teacher: Optional[TeacherSettings] = Field(
        None, description="a stronger model to distil into the base (an embedding API, a local "
        "sentence-transformers directory, or a local cross-encoder); none: contrastive training alone")
    baselines_budget_usd: float = Field(5.0, ge=0, description="the most a run may spend embedding with the "
                                        "baselines' APIs (estimated before any call, only for texts not cached); "
                                        "above it the step refuses and calls nothing")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    executor: Literal["in_process", "multiprocess", "k8s"] = Field(
        "in_process", description="in_process loads torch once; multiprocess runs steps side by side; k8s runs "
        "each step in its own Kubernetes pod (dagster-k8s), as the `k8s` section says"
    )
    k8s: KubernetesSettings = Field(default_factory=KubernetesSettings)
    run: RunDefaults = Field(default_factory=RunDefaults)
    progress_seconds: float = Field(30.0, ge=0, description="long steps (encoding, LLM calls, training) log a "
                                    "progress line at most this often; 0: after each training step, LLM call or "
                                    "block of encoded texts")
    retune: RetuneSettings = Field(default_factory=RetuneSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    indexes: list[IndexSettings] = Field(default_factory=list, description="vector indexes served from the "
                                         "registered versions (the vector_index asset; `embtune index`)")
    source_file: Optional[Path] = Field(None, exclude=True, description="set by load_settings")

    @model_validator(mode="before")
    @classmethod
    def _one_base_model(cls, raw):
        if isinstance(raw, dict) and "base_model" in raw:
            if "base_models" in raw:
                raise ValueError("base_model and base_models are both set: base_models (a list) is the key, "
                                 "base_model: X another spelling of base_models: [X]; keep one")
            raw = dict(raw)
            raw["base_models"] = [raw.pop("base_model")]
        return raw

    @model_validator(mode="before")
    @classmethod
    def _baseline_strings(cls, raw):
        if isinstance(raw, dict) and isinstance(raw.get("baselines"), list):
            raw = {**raw, "baselines": [{"model": b} if isinstance(b, str) else b for b in raw["baselines"]]}
        if isinstance(raw, dict) and isinstance(raw.get("teacher"), str):
            raw = {**raw, "teacher": {"model": raw["teacher"]}}
        return raw

    @model_validator(mode="after")
    def _baseline_names_unique(self):
        names = [b.name for b in self.baselines]
        if len(set(names)) != len(names):
            raise ValueError(f"baselines {names} repeat a name: give each a distinct label")
        return self

    @model_validator(mode="after")
    def _base_model_keys_unique(self):
        keys = [base_model_key(m) for m in self.base_models]
        if len(set(keys)) != len(keys):
            raise ValueError(f"base_models {self.base_models} give the same partition key twice: {keys}")
        return self

    @field_validator("indexes")
    @classmethod
    def _index_names_unique(cls, indexes: list[IndexSettings]) -> list[IndexSettings]:
        names = [i.name for i in indexes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the name(s) {repeated} appear more than once: give each index its own name")
        return indexes

    def index(self, name: str) -> IndexSettings:
        """The settings of the index `name`; a SettingsError naming the indexes there are otherwise."""
        for i in self.indexes:
            if i.name == name:
                return i
        raise SettingsError(f"no index {name!r} in the settings' indexes "
                            f"({', '.join(i.name for i in self.indexes) or 'none declared'})")

    def index_uri(self, name: str) -> str:
        """Where the index's tables live: its uri, else its folder under data_dir (layout.index_tables)."""
        return self.index(name).uri or str(self.layout.index_tables(name))

    def base_model_ref(self, key: str) -> str:
        """The base model a partition key names."""
        for ref in self.base_models:
            if base_model_key(ref) == key:
                return ref
        raise SettingsError(f"base model partition {key!r} is not in the settings' base_models "
                            f"{[base_model_key(m) for m in self.base_models]}")

    @property
    def base_model_keys(self) -> list[str]:
        return [base_model_key(m) for m in self.base_models]

    @property
    def monitoring_eval_set(self) -> Optional[PairsSettings]:
        return self.monitoring.eval_set or self.eval_set

    @model_validator(mode="after")
    def _chunks_fit_the_model(self):
        limit = self.run.embed.max_seq_length - 2  # [CLS] and [SEP]
        if self.corpus.chunk_tokens > limit:
            raise ValueError(f"corpus.chunk_tokens ({self.corpus.chunk_tokens}) must be at most "
                             f"run.embed.max_seq_length - 2 ({limit}), or chunk tails are cut when embedded")
        return self

    @model_validator(mode="after")
    def _a_gpu_per_rank(self):
        """On Kubernetes the training pod gets k8s.gpus_per_step GPUs; NCCL ranks cannot share one."""
        k8s, processes = self.k8s, self.run.train.processes
        if (self.executor == "k8s" and "finetuned_model" in k8s.gpu_steps and processes > 1
                and processes != k8s.gpus_per_step):
            raise ValueError(f"run.train.processes ({processes}) must equal k8s.gpus_per_step "
                             f"({k8s.gpus_per_step}): each training process takes one of the pod's GPUs")
        return self

    @model_validator(mode="after")
    def _beir_splits(self):
        """A BEIR corpus brings its own Q&A pairs (qrels/train.tsv) and eval set (qrels/test.tsv), unless the
        file sets those keys itself (`qa_pairs: null` turns the pairs off)."""
        if self.corpus.format == "beir" and self.corpus.path is not None:
            qrels = self.corpus.path / "qrels"
            if "qa_pairs" not in self.model_fields_set and (qrels / "train.tsv").exists():
                self.qa_pairs = PairsSettings(path=self.corpus.path, format="beir", split="train")
            if "eval_set" not in self.model_fields_set and (qrels / "test.tsv").exists():
                self.eval_set = PairsSettings(path=self.corpus.path, format="beir", split="test")
        return self

    @property
    def layout(self) -> "Layout":
        return Layout(self.data_dir)

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.layout.mlflow_db}"
