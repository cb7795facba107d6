"""vector_index: the corpus snapshot embedded by a registered version into a new table of the index's vector
store, checked, then served (the index's pointer moved to it and its binding written). One partition per index
in settings `indexes`; materialized on demand (`embtune index build`, the UI) and, for `rollout: auto`
indexes, by the vector_index_rollout_sensor when the champion changes."""


from typing import Optional

import dagster as dg
from pydantic import Field

from embtune_pipeline.assets._common import records_table, reporter, rounded
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.vector_store import VectorStore

SERVING = "serving"
VECTOR_INDEX = "vector_index"


class IndexBuildConfig(dg.Config):
    version: Optional[str] = Field(None, description="the registered version to embed with (unset: the champion)")
    snapshot: Optional[str] = Field(None, description="the corpus snapshot to index (unset: the latest registered, "
                                    "else the version's own)")


def latest_snapshot(instance) -> Optional[str]:
    from embtune_pipeline.partitions import SNAPSHOTS

    keys = instance.get_dynamic_partitions(SNAPSHOTS.name) if instance is not None else []
    return keys[-1] if keys else None


def vector_index_asset(index_names: list[str]) -> dg.AssetsDefinition:
    """The asset, partitioned by the settings' index names (built with the Definitions)."""

    @dg.asset(name=VECTOR_INDEX, group_name=SERVING, kinds={"lancedb"},
              partitions_def=dg.StaticPartitionsDefinition(index_names),
              deps=[dg.AssetDep("registered_model", partition_mapping=dg.AllPartitionMapping())])
    def vector_index(context: dg.AssetExecutionContext, config: IndexBuildConfig, settings: SettingsResource,
                     mlflow: MlflowResource, embeddings: EmbeddingCache, corpus_source: CorpusSource,
                     vector_store: VectorStore) -> dg.MaterializeResult:
        """A blue/green build: a new table named by index, version and snapshot (rows: chunk id, document id,
        text, vector; the version and its fingerprint recorded with it), vectors reused from the embedding
        store (eval_report stored the tuned model's), only changed chunks rewritten on a new snapshot of the
        same model. Checked (rows, dimension, nDCG@10 through the index against the version's eval_report),
        then the pointer moves and the binding is written; on any failure the old pointer stays and nothing is
        deleted."""
        from embtune_pipeline.lib.serving.build import build_index

        s = settings.get()
        request, encode = prepare_build(s, context.partition_key, config.version,
                                        config.snapshot or latest_snapshot(context.instance), mlflow, embeddings,
                                        corpus_source, reporter(context, s))
        result = build_index(vector_store, request, encode, on_switch=bind(s))
        context.log.info(f"{request.index}: {result.plan.why}; now serving {result.table} ({result.check.summary()})")
        return dg.MaterializeResult(metadata=build_metadata(result, request.reference))

    return vector_index


def prepare_build(s, index: str, version: Optional[str], snapshot: Optional[str], mlflow: MlflowResource,
                  embeddings: EmbeddingCache, corpus_source: CorpusSource, progress=None):
    """The BuildRequest for `index` with `version` (default: the champion) on `snapshot` (default: the
    version's), and the encoder of its chunks: the version's embedding store, filled only where it lacks a
    vector (the model loaded only then)."""
    from embtune_pipeline.lib.data.chunking import chunk_texts, text_hash
    from embtune_pipeline.lib.embeddings import encode_cached, model_if_needed
    from embtune_pipeline.lib.evaluation.evaluate import qrels_of
    from embtune_pipeline.lib.progress import SILENT
    from embtune_pipeline.lib.serving.build import BuildRequest
    from embtune_pipeline.lib.serving.tables import VectorIndexError
    from embtune_pipeline.lib.serving.versions import version_model

    settings = s.index(index)
    progress = progress or SILENT
    registry = mlflow.registry()
    if version is None:
        champion = registry.champion()
        if champion is None:
            raise VectorIndexError(f"index {index}: {registry.name} has no champion yet: give a version "
                                   "(the asset's config `version`)")
        version = champion.version
    registered = registry.get(version)
    vm = version_model(registry, registered, s.layout.downloaded_models, s.run.embed.max_seq_length)
    snapshot = snapshot or vm.snapshot
    documents = corpus_source.snapshots().load(snapshot)
    base = s.base_model_ref(vm.base_key) if vm.base_key in s.base_model_keys else vm.base_model
    chunks, _ = corpus_source.chunk(documents, base)  # as the corpus asset chunks it for that base model
    key = embeddings.key_for(vm.model_dir, vm.max_seq_length)
    store = embeddings.store(key)
    eval_set = s.layout.read_asset("eval_set", vm.partition)
    if eval_set is None:
        raise VectorIndexError(f"index {index}: v{vm.version}'s eval set ({vm.partition}) is not stored under "
                               f"{s.layout.root}: the check needs it (materialize eval_set for that partition)")
    _, queries, gains = qrels_of(eval_set)
    backend = embeddings.backend

    loaded = []

    def encoder(hashes):  # loaded once, and only when a vector is missing
        if not loaded and store.missing(hashes):
            loaded.append(model_if_needed(store, hashes, vm.model_dir, vm.max_seq_length, backend))
        return loaded[0] if loaded else None

    query_vectors, _ = encode_cached(store, encoder([text_hash(q) for q in queries]), queries,
                                     s.run.embed.batch_size)

    def encode(rows):
        hashes = rows["chunk_hash"].tolist()
        return store.encode(encoder(hashes), hashes, chunk_texts(rows), s.run.embed.batch_size, progress,
                            f"embedding {len(rows)} chunks for index {index} with v{vm.version}")

    report = s.layout.read_asset("eval_report", vm.partition)  # the partition's latest: maybe a later version's
    own = report is not None and report.get("model_dir") == registered.model_dir
    same = own and snapshot == vm.snapshot
    reference = float(report["finetuned"]["ndcg@10"]) if same else None
    source = (f"v{vm.version}'s eval_report" if same else
              f"the evaluation's exact scan of this table (snapshot {snapshot}, not v{vm.version}'s {vm.snapshot})"
              if snapshot != vm.snapshot else
              f"the evaluation's exact scan of this table (the stored eval_report of {vm.partition} is another "
              f"version's, not v{vm.version}'s)")
    return BuildRequest(index, vm.model, vm.version, key, snapshot, chunks, int(query_vectors.shape[1]),
                        query_vectors, gains, reference, source, settings.keep, settings.ann_above_rows), encode


def bind(s):
    """The binding written when the pointer moves (index_bindings.json, as `embtune bind-index` writes it)."""
    from embtune_pipeline.lib.registry.versions import bind_index

    return lambda p: bind_index(s.layout.index_bindings, p.index, p.model, p.version, note=f"table {p.table}")


def build_metadata(result, reference: str) -> dict:
    c = result.check
    history = [{"table": m["table"], "version": m["version"], "snapshot": m["snapshot"], "moved_at": m["moved_at"],
                "reason": m["reason"]} for m in result.pointer.history_rows()]
    return {
        "table": result.table, "rows": c.rows, "model_version": result.meta.version,
        "model": result.meta.model, "fingerprint": result.meta.fingerprint, "snapshot": result.meta.snapshot,
        "build": result.plan.mode, "build_reason": result.plan.why, "encoded": result.encoded,
        "reused": result.reused, "rows_rewritten": result.plan.rewritten if result.plan.mode != "ready" else 0,
        "build_seconds": rounded(result.seconds, 2), "write_seconds": rounded(result.write_seconds, 2),
        "check_seconds": rounded(result.check_seconds, 2), "check": c.summary(),
        "ndcg@10_through_index": rounded(c.ndcg), "ndcg@10_reference": rounded(c.reference_ndcg),
        "ndcg@10_reference_from": reference, "ndcg@10_delta": rounded(c.delta), "dim": c.dim,
        **({"ann_top10_overlap": rounded(c.ann_top10_overlap)} if c.ann_top10_overlap is not None else {}),
        "previous_table": result.previous_table or "", "dropped_tables": ", ".join(result.dropped) or "",
        "pointer_history": records_table(history),
    }
