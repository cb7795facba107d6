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


def _format_errors(source: Path, err: Optional[ValidationError], problems: list[str]) -> str:
    """Every problem of a settings file in one message: the schema's, then every path that is not there."""
    lines = [f"invalid settings file {source}:"]
    for e in err.errors() if err is not None else []:
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines + [f"  {p}" for p in problems])


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
    problems = path_problems(raw, base)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        raise SettingsError(_format_errors(source, e, problems)) from None
    if problems:
        raise SettingsError(_format_errors(source, None, problems))
    settings.source_file = source
    return settings


def _section(holder, *keys):
    for key in keys:
        holder = holder.get(key) if isinstance(holder, dict) else None
    return holder


def _looks_like_path(ref: str, base: Path) -> bool:
    """Whether a model reference is meant as a local directory rather than a model name (all-MiniLM-L6-v2,
    BAAI/bge-small-en) or a hosted model (openai/text-embedding-3-small): an absolute path, one starting with
    ./ ../ or ~, or one whose first folder exists beside the settings file (models/teacher with models/ there)."""
    if ref.startswith(("/", "./", "../", "~")) or Path(ref).is_absolute():
        return True
    first = Path(ref).parts[0] if Path(ref).parts else ""
    return "/" in ref and bool(first) and (base / first).is_dir()


def path_problems(raw: dict, base: Path) -> list[str]:
    """Every path the settings hold that is not there, each as "<key>: <problem>", so one message names them
    all. Read from the file's mapping (relative paths already resolved), so the problems are found even beside
    schema errors: inputs (corpus, click_logs, qa_pairs, eval_set, monitoring.eval_set: their path, and for
    format beir the files it reads), prompt templates, the eval-set builder's query log, and local model
    directories (base models, corpus.tokenizer, teacher, baselines)."""
    problems = []
    data_dir = Path(str(raw.get("data_dir", "")))
    if raw.get("data_dir") and data_dir.exists() and not data_dir.is_dir():
        problems.append(f"data_dir: {data_dir} is a file; it must be a folder (or not exist yet). {DATA_DIR_ENV} "
                        "overrides it")
    for key in ("corpus", "click_logs", "qa_pairs", "eval_set", "monitoring.eval_set"):
        section = _section(raw, *key.split("."))
        path = _section(section, "path")
        if path is None:
            continue
        path = Path(str(path))
        if not path.exists():
            problems.append(f"{key}.path: no such file or directory: {path}")
            continue
        fmt = section.get("format") or ("beir" if key != "corpus" and path.is_dir() else None)
        if fmt == "beir":
            split = section.get("split") or "train"
            wanted = ["corpus.jsonl"] if key == "corpus" else ["queries.jsonl", f"qrels/{split}.tsv"]
            absent = [w for w in wanted if not (path / w).is_file()]
            if absent:
                problems.append(f"{key}.path: format beir reads {' and '.join(wanted)} from {path}; missing: "
                                f"{', '.join(absent)}")
        elif fmt == "dir" and not path.is_dir():
            problems.append(f"{key}.path: format dir reads a folder; {path} is a file")
    for key in ("generator.prompt_template", "eval_set_builder.prompt_template", "eval_set_builder.queries"):
        path = _section(raw, *key.split("."))
        if path and not Path(str(path)).is_file():
            problems.append(f"{key}: no such file: {path}")
    models = [("base_model", raw.get("base_model")), ("corpus.tokenizer", _section(raw, "corpus", "tokenizer"))]
    if isinstance(raw.get("base_models"), list):
        models += [(f"base_models[{i}]", m) for i, m in enumerate(raw["base_models"])]
    teacher = raw.get("teacher")
    models.append(("teacher.model", teacher.get("model")) if isinstance(teacher, dict) else ("teacher", teacher))
    for i, b in enumerate(raw.get("baselines") if isinstance(raw.get("baselines"), list) else []):
        models.append((f"baselines[{i}].model", b.get("model")) if isinstance(b, dict) else (f"baselines[{i}]", b))
    for key, ref in models:
        if isinstance(ref, str) and _looks_like_path(ref, base):
            path = _resolve(base, Path(ref))
            if not path.is_dir():
                problems.append(f"{key}: no such model directory: {path} (a local model is a sentence-transformers "
                                "folder; a model name or provider/model string is not a path)")
    return problems


def settings_digest(settings: Settings) -> str:
    """A short fingerprint of the settings, recorded with every model."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:12]
