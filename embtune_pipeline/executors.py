"""Which Dagster executor runs a job's steps, as the settings choose: in one process, in processes side by side,
or each in its own Kubernetes pod through dagster-k8s's k8s_job_executor (never a scheduler of our own)."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.settings import KubernetesSettings, Settings

GPU_RESOURCE = "nvidia.com/gpu"
K8S_EXTRA = 'pip install "embtune[k8s]"'


def k8s_executor_config(k: KubernetesSettings) -> dict:
    """k8s_job_executor's config from the settings' `k8s` section: every step pod gets the image, namespace,
    resources and Secrets (by name: their values never enter the spec); each GPU step also requests GPUs and
    gets the GPU node selector and tolerations, through per_step_k8s_config (keyed by the step's op name).
    The shared data volume comes with the code location's own config (docker/helm/values.yaml), which
    dagster-k8s passes on to every run and step pod."""
    config: dict = {}
    if k.image:
        config["job_image"] = k.image
    if k.namespace:
        config["job_namespace"] = k.namespace
    if k.env_secrets:
        config["env_secrets"] = list(k.env_secrets)
    if k.step_resources:
        config["step_k8s_config"] = {"container_config": {"resources": k.step_resources}}
    gpu_step = {
        "container_config": {"resources": _with_gpus(k.step_resources, k.gpus_per_step)},
        "pod_spec_config": {
            **({"node_selector": dict(k.gpu_node_selector)} if k.gpu_node_selector else {}),
            **({"tolerations": [dict(t) for t in k.gpu_tolerations]} if k.gpu_tolerations else {}),
        },
    }
    config["per_step_k8s_config"] = {step: gpu_step for step in k.gpu_steps}
    return config


def _with_gpus(resources: dict, gpus: int) -> dict:
    """The step resources plus GPUs, which Kubernetes takes as a limit (a request alone is refused)."""
    limits = {**resources.get("limits", {}), GPU_RESOURCE: str(gpus)}  # a quantity, as Kubernetes spells one
    return {**resources, "limits": limits}


def executor_for(s: Settings) -> dg.ExecutorDefinition:
    if s.executor == "in_process":
        return dg.in_process_executor
    if s.executor == "multiprocess":
        return dg.multiprocess_executor
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as e:
        raise ImportError(f"executor: k8s needs dagster-k8s: {K8S_EXTRA}") from e
    return k8s_job_executor.configured(k8s_executor_config(s.k8s), name="embtune_k8s")


def unknown_gpu_steps(defs: dg.Definitions, gpu_steps: list[str]) -> list[str]:
    """Names in k8s.gpu_steps that no op of the code location's jobs has: dagster-k8s matches per-step config by
    op name, so such a name would request no GPU, silently."""
    ops = {op.name for job in defs.resolve_all_job_defs() for op in job.graph.iterate_op_defs()}
    return sorted(set(gpu_steps) - ops)
