"""Reading a settings file: its location, relative paths, the environment's overrides, errors that name the
file and the key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from embtune_pipeline.settings.schema import CONFIG_ENV, DATA_DIR_ENV, TRACKING_URI_ENV, Settings, SettingsError

DEMO_CONFIG = Path(__file__).parents[1] / "demo" / "settings.yaml"


def _resolve(base: Path, path: Optional[Path]) -> Optional[Path]:
    if path is None:
        return None
    path = Path(os.path.expandvars(str(path))).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _format_errors(source: Path, err: ValidationError) -> str:
    lines = [f"invalid settings file {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


def load_settings(path: Optional[os.PathLike | str] = None) -> Settings:
    """Load and validate a settings file; errors name the file and the offending key."""
    source = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).expanduser().resolve()
    if not source.is_file():
        raise SettingsError(f"settings file not found: {source} (set {CONFIG_ENV} to a YAML file)")
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as e:
        raise SettingsError(f"settings file {source} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise SettingsError(f"settings file {source} must hold a mapping at the top level")
    base = source.parent
    data_dir_raw = os.environ.get(DATA_DIR_ENV) or raw.get("data_dir")
    raw["data_dir"] = str(_resolve(base, Path(data_dir_raw)) if data_dir_raw else Path.cwd() / "embtune-data")
    if os.environ.get(TRACKING_URI_ENV):
        raw["mlflow"] = {**(raw.get("mlflow") or {}), "tracking_uri": os.environ[TRACKING_URI_ENV]}
    # Resolve the relative paths of inputs against the settings file's folder.
    monitoring = raw.get("monitoring") if isinstance(raw.get("monitoring"), dict) else {}
    inputs = [(raw, k) for k in ("corpus", "click_logs", "qa_pairs", "eval_set")] + [(monitoring, "eval_set")]
    for holder, key in inputs:
        section = holder.get(key)
        if isinstance(section, dict) and section.get("path") is not None:
            section["path"] = str(_resolve(base, Path(str(section["path"]))))
    builder = raw.get("eval_set_builder")
    if isinstance(builder, dict) and builder.get("queries"):
        builder["queries"] = str(_resolve(base, Path(str(builder["queries"]))))
    for key in ("generator", "eval_set_builder"):
        section = raw.get(key)
        if isinstance(section, dict) and section.get("prompt_template"):
            section["prompt_template"] = str(_resolve(base, Path(section["prompt_template"])))
    # An index's uri without a scheme is a folder, relative to the settings file like the inputs
    for index in raw["indexes"] if isinstance(raw.get("indexes"), list) else []:
        if isinstance(index, dict) and isinstance(index.get("uri"), str) and "://" not in index["uri"]:
            index["uri"] = str(_resolve(base, Path(index["uri"])))
    # A model is a packaged name or a directory; a relative directory is relative to the settings file.
    corpus = raw.get("corpus") if isinstance(raw.get("corpus"), dict) else {}
    def local(ref):
        if isinstance(ref, str) and not Path(ref).is_absolute() and (base / ref).exists():
            return str(_resolve(base, Path(ref)))
        return ref

    for holder, key in ((raw, "base_model"), (corpus, "tokenizer")):
        if key in holder:
            holder[key] = local(holder[key])
    if isinstance(raw.get("base_models"), list):
        raw["base_models"] = [local(m) for m in raw["base_models"]]
    if isinstance(raw.get("baselines"), list):
        raw["baselines"] = [{**b, "model": local(b.get("model"))} if isinstance(b, dict) else local(b)
                            for b in raw["baselines"]]
    if raw.get("teacher") is not None:
        t = raw["teacher"]
        raw["teacher"] = {**t, "model": local(t.get("model"))} if isinstance(t, dict) else local(t)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        raise SettingsError(_format_errors(source, e)) from None
    settings.source_file = source
    _check_paths(settings, source)
    return settings


def _check_paths(settings: Settings, source: Path) -> None:
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise SettingsError(f"invalid settings file {source}:\n  data_dir: {settings.data_dir} is a file; it must be "
                            f"a folder (or not exist yet). {DATA_DIR_ENV} overrides it")
    sections = [(k, getattr(settings, k)) for k in ("corpus", "click_logs", "qa_pairs", "eval_set")]
    for key, section in sections + [("monitoring.eval_set", settings.monitoring.eval_set)]:
        if section is not None and section.path is not None and not section.path.exists():
            raise SettingsError(
                f"invalid settings file {source}:\n  {key}.path: no such file or directory: {section.path}")


def settings_digest(settings: Settings) -> str:
    """A short fingerprint of the settings, recorded with every model."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:12]
