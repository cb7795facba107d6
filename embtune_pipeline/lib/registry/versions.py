"""Model versions in the MLflow Model Registry, the `champion` / `challenger` aliases, rollback, and the record
of which vector index was built with which version (no Dagster here).

Each promotion tags the new champion with the version it replaced (`previous_champion`), so a rollback moves
the alias back one step at a time without any other state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.evaluation.evaluate import METRICS
from embtune_pipeline.lib.storage import utc_now, write_atomically

CHAMPION, CHALLENGER = "champion", "challenger"
FLAVOR_DATA_DIR = "model.sentence_transformer"  # where the sentence_transformers flavor keeps the model


UNCHANGED = "(unchanged)"


def choose_alias(version: int, promotable: bool, synthetic: bool, base_key: str,
                 champion_version: Optional[int], champion_base_key: Optional[str]) -> tuple[str, str]:
    """Which alias a newly registered version takes, and why (the registered_model asset applies it).

    A promotable version (it beats its base on real queries) becomes `champion` when there is none yet or the
    champion has the same base model; otherwise it becomes `challenger` and the base_model_upgrade report tells
    whether to promote it by hand. A version older than the champion (a backfill of an earlier partition) leaves
    the aliases alone."""
    if champion_version is not None and version < champion_version:
        return UNCHANGED, (f"older than champion v{champion_version}: aliases unchanged (`embtune promote` to "
                           "choose it)")
    if promotable and (champion_version is None or champion_base_key == base_key):
        return CHAMPION, "beats its base on real queries"
    if synthetic:
        return CHALLENGER, "not promotable: measured on synthetic queries only, so it is never champion"
    if not promotable:
        return CHALLENGER, "not promotable: it did not beat its base on real queries"
    return CHALLENGER, (f"promotable, but champion v{champion_version} has another base model "
                        f"({champion_base_key}): see base_model_upgrade, then `embtune promote`")


def version_tags(model: dict, report: dict, base_key: str, snapshot: str, dagster_run_id: str) -> dict:
    """A registered version's tags: where it came from (base model, snapshot, run, training key) and how it
    measured (eval set, base and tuned metrics, the gain's lower bound), so the registry alone tells them apart."""
    return {"base_model": model["base_model"], "base_model_key": base_key, "snapshot": snapshot,
            "dagster_run_id": dagster_run_id, "model_dir": model["model_dir"], "training_key": model["training_key"],
            "eval_source": report["eval_set"]["source"], "eval_synthetic": report["eval_set"]["synthetic"],
            "eval_queries": report["eval_set"]["queries"], "promotable": report["promotable"],
            **{f"base_{m}": round(report["base"][m], 4) for m in METRICS},
            **{f"tuned_{m}": round(report["finetuned"][m], 4) for m in METRICS},
            "ndcg@10_delta_ci_low": round(report["comparison"]["ci_low"], 4),
            **_serving_tags(report.get("serving"))}


def _serving_tags(serving) -> dict:
    """Where the version's ONNX and int8 forms are (in its run's serving/ folder), how int8 measured, and which
    form encoded fastest on the machine that measured it."""
    if not serving or "skipped" in serving:
        return {}
    return {"serving_artifacts": "serving/ in the version's run: " + ", ".join(serving["files"]),
            "int8_ndcg@10": round(serving["int8"]["ndcg@10"], 4),
            "int8_docs_per_s_vs_torch": serving["int8_speedup_vs_torch"],
            "fastest_serving_form": f"{serving['fastest']['runs']}, {serving['fastest']['vs_torch']}x PyTorch's docs/s"}


@dataclass
class Version:
    version: str
    tags: dict
    aliases: list[str]
    source: str

    @property
    def model_dir(self) -> str:
        return self.tags.get("model_dir", "")


class ModelRegistry:
    def __init__(self, tracking_uri: str, model_name: str, ui_url: str = ""):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.name = model_name
        self.tracking_uri = tracking_uri
        self.ui_url = ui_url.rstrip("/")

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="embtune fine-tuned embedding models; aliases champion and challenger")

    def register(self, run_id: str, model_uri: str, tags: dict) -> Version:
        """A new version of the model logged by the training run (`model_uri`, a sentence_transformers-flavor
        model); tags say what produced it and how it scored."""
        self._ensure_model()
        model_id = model_uri.split("/", 1)[1] if model_uri.startswith("models:/m-") else None
        mv = self.client.create_model_version(self.name, source=model_uri, run_id=run_id, model_id=model_id,
                                              tags={tag_key(k): str(v) for k, v in tags.items()})
        return self.get(mv.version)

    def version_for_run(self, run_id: str) -> Optional[Version]:
        """The version already registered from this training run, if any: a rerun must not register it twice."""
        found = self.client.search_model_versions(f"name='{self.name}' and run_id='{run_id}'")
        return self.get(max(found, key=lambda v: int(v.version)).version) if found else None

    def get(self, version: str) -> Version:
        return _version(self.client.get_model_version(self.name, str(version)))

    def by_alias(self, alias: str) -> Optional[Version]:
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException:
            return None

    def champion(self) -> Optional[Version]:
        return self.by_alias(CHAMPION)

    def promote(self, version: str) -> Optional[str]:
        """Make `version` the champion; returns the version it replaced (None for the first)."""
        previous = self.champion()
        if previous and previous.version == str(version):
            return self.get(version).tags.get("previous_champion") or None
        if previous:
            self.client.set_model_version_tag(self.name, str(version), "previous_champion", previous.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
        self.client.set_model_version_tag(self.name, str(version), "promoted_at", utc_now())
        if (challenger := self.by_alias(CHALLENGER)) and challenger.version == str(version):
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        return previous.version if previous else None

    def set_challenger(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHALLENGER, str(version))

    def rollback(self) -> tuple[str, str]:
        """Move `champion` back to the version the current one replaced; returns (from, to)."""
        current = self.champion()
        if current is None:
            raise ValueError(f"registered model {self.name!r} has no champion to roll back")
        previous = current.tags.get("previous_champion")
        if not previous:
            raise ValueError(f"champion version {current.version} of {self.name!r} replaced no earlier version: "
                             "nothing to roll back to")
        self.client.set_registered_model_alias(self.name, CHAMPION, previous)
        self.client.set_model_version_tag(self.name, current.version, "rolled_back_at", utc_now())
        return current.version, previous

    def local_dir(self, version: Version, cache_dir: Path) -> str:
        """The version's model as a local sentence-transformers directory: where it was trained when that is
        on this machine, else downloaded once from the registry (the flavor keeps it in a sub-folder)."""
        if version.model_dir and Path(version.model_dir, "modules.json").exists():
            return version.model_dir
        target = Path(cache_dir) / f"{self.name}-v{version.version}"
        if not (target / "modules.json").exists():
            import shutil
            import tempfile

            import mlflow

            mlflow.set_tracking_uri(self.tracking_uri)
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            downloaded = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{self.name}/{version.version}", dst_path=tempfile.mkdtemp(dir=cache_dir)))
            model = downloaded / FLAVOR_DATA_DIR
            shutil.rmtree(target, ignore_errors=True)
            (model if model.is_dir() else downloaded).replace(target)
            shutil.rmtree(downloaded, ignore_errors=True)
        return str(target)

    def version_url(self, version: str) -> str:
        return f"{self.ui_url or '(start `mlflow ui`)'}/#/models/{self.name}/versions/{version}"


def _version(mv) -> Version:
    return Version(str(mv.version), dict(mv.tags), list(mv.aliases), mv.source)


def tag_key(name: str) -> str:
    """MLflow keys allow no "@": ndcg@10 is stored as ndcg_at_10, as the tracker names metrics."""
    return name.replace("@", "_at_")


# ---------------------------------------------------------------- index bindings


def read_bindings(path: Path) -> dict[str, dict]:
    """{index name: {"model": registered model, "version": ..., "bound_at": ...}}; empty when none yet."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); fix or delete the file") from e


def bind_index(path: Path, index: str, model: str, version: str, note: str = "") -> dict:
    """Record that `index` was (re-)embedded with `model` version `version`."""
    if not index.strip():
        raise ValueError("an index name is required")
    bindings = read_bindings(path)
    bindings[index] = {"model": model, "version": str(version), "bound_at": utc_now(), "note": note}
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(bindings, indent=2, sort_keys=True)))
    return bindings[index]


def stale_indexes(bindings: dict[str, dict], model: str, champion_version: Optional[str]) -> dict[str, str]:
    """Indexes of `model` bound to a version that is not the champion: {index: bound version}. They serve
    vectors from an older model and need re-embedding."""
    if champion_version is None:
        return {}
    return {name: b["version"] for name, b in bindings.items()
            if b.get("model") == model and str(b.get("version")) != str(champion_version)}
