"""The corpus encoding fans out: under the multiprocess executor (as under k8s, a pod each) every shard is a step
in a process of its own, and the shards' vectors, written separately, merge into one store by content hash."""

import os

import dagster as dg
import pytest

from embtune_pipeline_tests.conftest import tiny_run_defaults, write_jsonl

pytestmark = pytest.mark.slow


def retune_side_by_side():
    """The code location's retune job with its steps in separate processes (rebuilt in each from EMBTUNE_CONFIG)."""
    from embtune_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def("retune").with_executor_def(dg.multiprocess_executor)


def test_shards_encode_in_separate_processes_into_one_store(write_settings, tmp_path, monkeypatch):
    from embtune_pipeline.lib.embeddings import EmbeddingStore
    from embtune_pipeline.partitions import RETUNE_PARTITIONS, retune_key
    from embtune_pipeline.runner import register_snapshot
    from embtune_pipeline.settings import load_settings

    docs = [{"id": f"d{i}", "title": f"Jaguar note {i}", "text": f"Jaguar setting {i} is on by default."}
            for i in range(30)]
    run = tiny_run_defaults()
    run["embed"]["shard_chunks"] = 12  # 30 chunks: shards of 12, 12 and 6
    settings = write_settings(corpus={"path": str(write_jsonl(tmp_path / "docs.jsonl", docs)), "format": "jsonl"},
                              run=run)
    monkeypatch.setenv("EMBTUNE_CONFIG", str(settings))
    s = load_settings(settings)
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        snapshot = register_snapshot(instance, s)
        tags = RETUNE_PARTITIONS.get_tags_for_partition_key(retune_key(s.base_model_keys[0], snapshot.key))
        result = dg.execute_job(dg.reconstructable(retune_side_by_side), instance, tags=tags,
                                asset_selection=[dg.AssetKey("corpus"), dg.AssetKey("base_corpus_embeddings")])
        assert result.success
        done = {e.step_key: e.pid for e in result.all_events if e.is_step_success}
    shards = {k: pid for k, pid in done.items() if k.startswith("base_corpus_embeddings.encode_corpus_shard[")}
    assert len(shards) == 3 and len(set(shards.values())) == 3 and os.getpid() not in shards.values()
    merged = result.asset_materializations_for_node("base_corpus_embeddings")[0].metadata
    assert merged["shards"].value == 3 and merged["embedding_cache_misses"].value == 30
    store = EmbeddingStore(s.layout.embeddings(merged["key"].value))
    assert len(list(store.root.glob("shard-*.npy"))) == 3  # one file per shard step, read as one store
    corpus = s.layout.read_asset("corpus", f"{s.base_model_keys[0]}|{snapshot.key}")
    assert store.get(corpus["chunk_hash"].tolist()).shape == (30, 32)
    assert not (s.layout.step_outputs / result.run_id).exists()  # the shards' texts, handed over, then deleted
