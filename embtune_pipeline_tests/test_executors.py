"""executor: k8s, checked without a cluster: the pod each step would get, built with dagster-k8s's own API from
the config the code location's executor resolves, merged in the order k8s_job_executor merges it (executor
config, then the step's per_step_k8s_config)."""

import json

import dagster as dg
import pytest

from embtune_pipeline.executors import GPU_RESOURCE, executor_for
from embtune_pipeline.settings import Settings

dagster_k8s = pytest.importorskip("dagster_k8s", reason="the k8s extra: pip install 'embtune[k8s]'")

IMAGE = "registry.example/embtune:1.0"


def pod_spec(executor_config: dict, step: str) -> dict:
    """The Kubernetes Job of one step, as k8s_job_executor would launch it under the Helm chart's run launcher
    (its DAGSTER_HOME, instance ConfigMap and Postgres Secret)."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    fields = ("image_pull_policy", "image_pull_secrets", "service_account_name", "env_config_maps", "env_secrets",
              "env_vars", "volume_mounts", "volumes", "labels", "resources", "scheduler_name", "security_context")
    executor_level = K8sContainerContext(  # what k8s_job_executor builds from its config, field for field
        **{f: executor_config.get(f) for f in fields}, namespace=executor_config.get("job_namespace"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor_config.get("step_k8s_config", {})))
    step_level = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
        executor_config.get("per_step_k8s_config", {}).get(step, {})))
    context = executor_level.merge(step_level)
    job_config = DagsterK8sJobConfig(job_image=executor_config["job_image"], dagster_home="/opt/dagster/dagster_home",
                                     instance_config_map="dagster-instance",
                                     postgres_password_secret="dagster-postgresql-secret")
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], f"dagster-step-{step}",
                                    user_defined_k8s_config=context.run_k8s_config, component="step_worker")
    return job.to_dict()["spec"]["template"]["spec"]


def resolved(executor: dg.ExecutorDefinition) -> dict:
    """The executor config k8s_job_executor receives (defaults filled in), as Dagster resolves it for a run."""
    result = executor.config_schema.resolve_config({})
    assert result.success, result.errors
    return result.value["config"]


def _k8s_config(**k8s) -> dict:
    settings = Settings.model_validate({
        "corpus": {"format": "python-docs"}, "executor": "k8s",
        "k8s": {"image": IMAGE, "env_secrets": ["embtune-llm-keys"],
                "gpu_node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                "step_resources": {"requests": {"cpu": "2", "memory": "8Gi"}}, **k8s}})
    return resolved(executor_for(settings))


def test_the_training_pod_requests_a_gpu_and_other_steps_none(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-embtune-test-secret-value")
    config = _k8s_config()
    training = pod_spec(config, "finetuned_model")
    container = training["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {GPU_RESOURCE: "1"}
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert training["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert training["tolerations"] == [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule",
                                        "toleration_seconds": None, "value": None}]
    for step in ("corpus", "synthetic_queries", "hard_negatives", "encode_corpus_shard", "eval_report"):
        spec = pod_spec(config, step)
        assert spec["containers"][0]["image"] == IMAGE
        assert GPU_RESOURCE not in json.dumps(spec) and not spec.get("tolerations") and not spec.get("node_selector")
        assert spec["containers"][0]["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    # API keys reach every pod from the named Secret, and no secret value is in any spec
    for step in ("finetuned_model", "synthetic_queries"):
        spec = pod_spec(config, step)
        assert [e["secret_ref"]["name"] for e in spec["containers"][0]["env_from"]] == ["embtune-llm-keys"]
        assert "sk-embtune-test-secret-value" not in json.dumps(spec)


def test_encoding_steps_take_gpus_when_listed():
    config = _k8s_config(gpu_steps=["finetuned_model", "encode_corpus_shard"], gpus_per_step=2)
    assert pod_spec(config, "encode_corpus_shard")["containers"][0]["resources"]["limits"] == {GPU_RESOURCE: "2"}
    assert GPU_RESOURCE not in json.dumps(pod_spec(config, "plan_corpus_shards"))
    assert GPU_RESOURCE not in json.dumps(pod_spec(config, "eval_report"))


def test_settings_choose_the_k8s_executor(write_settings, tmp_path):
    from embtune_pipeline.definitions import build_definitions

    (tmp_path / "docs").mkdir()
    settings = write_settings(corpus={"path": str(tmp_path / "docs"), "format": "dir"}, executor="k8s",
                              k8s={"image": IMAGE, "gpus_per_step": 4})
    job = build_definitions(str(settings)).get_job_def("retune")
    assert job.executor_def.name == "embtune_k8s"
    # the executor matches per-step config by op name: each corpus-encoding shard's step is this op
    from dagster._core.execution.api import create_execution_plan

    ops = {step.key: step.node_handle.name for step in create_execution_plan(job).steps}
    assert ops["base_corpus_embeddings.encode_corpus_shard[?]"] == "encode_corpus_shard"
    training = pod_spec(resolved(job.executor_def), "finetuned_model")
    assert training["containers"][0]["image"] == IMAGE
    assert training["containers"][0]["resources"]["limits"] == {GPU_RESOURCE: "4"}


def test_a_gpu_step_that_names_no_op_is_refused(write_settings, tmp_path):
    from embtune_pipeline.definitions import build_definitions

    (tmp_path / "docs").mkdir()
    settings = write_settings(corpus={"path": str(tmp_path / "docs"), "format": "dir"}, executor="k8s",
                              k8s={"image": IMAGE, "gpu_steps": ["finetuned_model", "base_corpus_embeddings"]})
    with pytest.raises(ValueError, match=r"k8s.gpu_steps names no step: \['base_corpus_embeddings'\]"):
        build_definitions(str(settings))
