"""Model versions in the MLflow Model Registry, the `champion` / `challenger` aliases, rollback, and the record
of which vector index was built with which version (no Dagster here).

Each promotion tags the new champion with the version it replaced (`previous_champion`), so a rollback moves
the alias back one step at a time without any other state; the version rolled back from is tagged
`rolled_back_at`, and a rerun that registers it again leaves the champion where the rollback put it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.evaluation.evaluate import METRICS
from embtune_pipeline.lib.storage import utc_now, write_atomically

CHAMPION, CHALLENGER = "champion", "challenger"
FLAVOR_DATA_DIR = "model.sentence_transformer"  # where the sentence_transformers flavor keeps the model


UNCHANGED = "(unchanged)"
KEPT = "(champion kept)"  # a rerun of a rolled-back version: the rollback stands
ROLLED_BACK_AT = "rolled_back_at"  # set by rollback on the version it left; cleared by promote
# MLflow waits minutes for a server that does not answer (7 retries with backoff, 120 s a request); a registry
# command someone is waiting on gives up within seconds unless they set these variables themselves
FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # MLflow's codes for no such version/alias


class RegistryError(ValueError):
    """The registry cannot answer (unreachable, no such version) or the bindings file is damaged: one line."""


def choose_alias(version: int, promotable: bool, synthetic: bool, base_key: str,
                 champion_version: Optional[int], champion_base_key: Optional[str],
                 rolled_back_at: Optional[str] = None) -> tuple[str, str]:
    """Which alias a newly registered version takes, and why (the registered_model asset applies it).

    A promotable version (it beats its base on real queries) becomes `champion` when there is none yet or the
    champion has the same base model; otherwise it becomes `challenger` and the base_model_upgrade report tells
    whether to promote it by hand. A version older than the champion (a backfill of an earlier partition) leaves
    the aliases alone, and so does a version someone rolled back from (`rolled_back_at`): a rerun registers it
    again, but only a newer version or `embtune promote` moves the champion."""
    if rolled_back_at and version != champion_version:
        kept = f"v{champion_version}" if champion_version is not None else "(none)"
        return KEPT, (f"champion kept: {kept} (v{version} was rolled back at {rolled_back_at}; "
                      f"`embtune promote {version}` makes it champion again)")
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
            **({"max_seq_length": model["max_seq_length"]} if model.get("max_seq_length") else {}),
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
    def __init__(self, tracking_uri: str, model_name: str, ui_url: str = "", fail_fast: bool = False):
        """fail_fast: for a command someone waits on, MLflow's HTTP waits are bounded (FAIL_FAST_HTTP) where the
        environment does not set them; a pipeline run keeps MLflow's patient retries."""
        from mlflow import MlflowClient

        if fail_fast:
            for name, value in FAIL_FAST_HTTP.items():
                os.environ.setdefault(name, value)
        self.client = _Answering(MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), tracking_uri)
        self.name = model_name
        self.tracking_uri = tracking_uri
        self.ui_url = ui_url.rstrip("/")

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException as e:
            if e.error_code not in NOT_FOUND:
                raise
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
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version(self.name, str(version)))
        except MlflowException as e:
            if e.error_code not in NOT_FOUND:
                raise
            known = sorted(int(v.version) for v in self.client.search_model_versions(f"name='{self.name}'"))
            raise RegistryError(f"{self.name} has no version {version} at {shown_uri(self.tracking_uri)} "
                                f"(its versions: {', '.join(map(str, known)) or 'none yet'})") from None

    def by_alias(self, alias: str) -> Optional[Version]:
        """The version holding `alias`; None only when the registry says there is none."""
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException as e:
            if e.error_code in NOT_FOUND:
                return None
            raise

    def champion(self) -> Optional[Version]:
        return self.by_alias(CHAMPION)

    def assign_alias(self, version: Version, promotable: bool, synthetic: bool,
                     base_key: str) -> tuple[str, str, Optional[str]]:
        """Give a registered version the alias `choose_alias` picks: (alias, why, the champion it replaced)."""
        champion = self.champion()
        alias, why = choose_alias(int(version.version), promotable, synthetic, base_key,
                                  int(champion.version) if champion else None,
                                  champion.tags.get("base_model_key") if champion else None,
                                  version.tags.get(ROLLED_BACK_AT))
        previous = self.promote(version.version) if alias == CHAMPION else None
        if alias == CHALLENGER:
            self.set_challenger(version.version)
        return alias, why, previous

    def promote(self, version: str) -> Optional[str]:
        """Make `version` the champion; returns the version it replaced (None for the first). Promoting a
        version that was rolled back overrides the rollback: reruns may make it champion again."""
        target = self.get(version)
        previous = self.champion()
        if previous and previous.version == str(version):
            return target.tags.get("previous_champion") or None
        if previous:
            self.client.set_model_version_tag(self.name, str(version), "previous_champion", previous.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
        self.client.set_model_version_tag(self.name, str(version), "promoted_at", utc_now())
        if ROLLED_BACK_AT in target.tags:
            self.client.delete_model_version_tag(self.name, str(version), ROLLED_BACK_AT)
        if (challenger := self.by_alias(CHALLENGER)) and challenger.version == str(version):
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        return previous.version if previous else None

    def set_challenger(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHALLENGER, str(version))

    def rollback(self) -> tuple[str, str]:
        """Move `champion` back to the version the current one replaced; returns (from, to). The version left
        is tagged `rolled_back_at`, so reruns of it do not make it champion again."""
        current = self.champion()
        if current is None:
            raise RegistryError(f"registered model {self.name!r} has no champion to roll back")
        previous = current.tags.get("previous_champion")
        if not previous:
            raise RegistryError(f"champion version {current.version} of {self.name!r} replaced no earlier version: "
                                "nothing to roll back to")
        self.client.set_registered_model_alias(self.name, CHAMPION, previous)
        self.client.set_model_version_tag(self.name, current.version, ROLLED_BACK_AT, utc_now())
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
        return f"{self.ui_url or '(start `embtune ui`)'}/#/models/{self.name}/versions/{version}"


class _Answering:
    """The MlflowClient, with "the tracking server did not answer" raised as a RegistryError naming it: MLflow
    raises that as the same MlflowException as "no such alias", so an unreachable registry looked empty."""

    def __init__(self, client, tracking_uri: str):
        self._client, self._tracking_uri = client, tracking_uri

    def __getattr__(self, name: str):
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - re-raised unless it is a failure to reach the server
                if (reason := unreachable(e)) is None:
                    raise
                raise RegistryError(f"cannot reach MLflow at {shown_uri(self._tracking_uri)} ({reason}): is the "
                                    "tracking server up? (settings mlflow.tracking_uri, or "
                                    "EMBTUNE_MLFLOW_TRACKING_URI)") from None

        return call


def unreachable(error: BaseException) -> Optional[str]:
    """Why the tracking server did not answer (refused, no such host, timed out), or None when `error` is not
    that: MLflow wraps the HTTP failure it gave up on in a plain MlflowException."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError, TimeoutError

    cause = error.__cause__ or error.__context__
    if not isinstance(cause, requests.exceptions.RequestException):
        return None
    last = cause.args[0].reason if cause.args and isinstance(cause.args[0], MaxRetryError) else cause
    timed_out = isinstance(last, TimeoutError) and not isinstance(last, NewConnectionError)  # urllib3's hierarchy
    if isinstance(cause, requests.exceptions.Timeout) or timed_out:
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '120')} s"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(cause))
    return errno.group(1).strip() if errno else type(cause).__name__


def shown_uri(tracking_uri: str) -> str:
    """The tracking URI without any user:password@ in it, for messages."""
    return re.sub(r"(?<=//)[^/@]*@", "", tracking_uri)


def _version(mv) -> Version:
    return Version(str(mv.version), dict(mv.tags), list(mv.aliases), mv.source)


def tag_key(name: str) -> str:
    """MLflow keys allow no "@": ndcg@10 is stored as ndcg_at_10, as the tracker names metrics."""
    return name.replace("@", "_at_")


# ---------------------------------------------------------------- index bindings


BINDING_FIELDS = ("model", "version", "bound_at")


def read_bindings(path: Path) -> dict[str, dict]:
    """{index name: {"model": registered model, "version": ..., "bound_at": ...}}; empty when none yet. A damaged
    file is a RegistryError naming it (and is never written over)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        bindings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RegistryError(f"{path}: not valid JSON ({e}); fix or delete the file") from None
    if not isinstance(bindings, dict):
        raise RegistryError(f"{path}: expected an object of index bindings, found {type(bindings).__name__}; "
                            "fix or delete the file")
    for index, binding in bindings.items():
        missing = [k for k in BINDING_FIELDS if k not in binding] if isinstance(binding, dict) else BINDING_FIELDS
        if missing:
            raise RegistryError(f"{path}: index {index!r} has no {', '.join(missing)}; fix the entry or bind it "
                                "again (`embtune bind-index`)")
    return bindings


def bind_index(path: Path, index: str, model: str, version: str, note: str = "") -> dict:
    """Record that `index` was (re-)embedded with `model` version `version`."""
    from filelock import FileLock

    if not index.strip():
        raise ValueError("an index name is required")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=60):  # two indexes bound at once: both kept
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
