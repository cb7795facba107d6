"""Encode-only backends: the same sentence-transformers model run by PyTorch, or exported to ONNX and run by
OpenVINO or ONNX Runtime; and that export with int8 weights (dynamic quantization), for serving.

optimum's exporter (sentence-transformers' own `backend="onnx"/"openvino"`) pins transformers < 4.58, below what
embtune runs, so the model is exported with torch.onnx and run with the runtimes directly. An export is checked
against PyTorch on sample texts before a step uses it: a runtime is taken only where every sample agrees (cosine
>= AGREEMENT). On CPUs with bfloat16 (AVX512-BF16, AMX), OpenVINO computes in it: on this project's machine 4.03x
PyTorch's docs/s at a least cosine of 0.99997 (benchmarks/throughput.py; 2.35x in an earlier session)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from embtune_pipeline.lib.models import SERVING_DIR
from embtune_pipeline.lib.secrets import redacted_excerpt

log = logging.getLogger(__name__)

RUNTIMES = ("openvino", "onnx")
AUTO_RUNTIMES = ("openvino",)  # what auto tries on a CPU: ONNX Runtime measured no faster than PyTorch there
BACKENDS = ("auto", "torch", *RUNTIMES)
AGREEMENT = 0.999  # the least cosine between an export's vector and PyTorch's on any sample text
AGREEMENT_SAMPLE = 32  # texts an export is checked on: the longest and shortest of what it is first asked to encode
ONNX_FILE, INT8_FILE, EXPORT_RECORD = "model.onnx", "model_int8.onnx", "embtune_export.json"
# quantize_int8's recipe: ONNX Runtime's quantize_dynamic arguments. ORT's default (one scale per tensor, embeddings
# too) cost a tuned model 0.02 nDCG@10 on SciFact; a scale per output channel on the MatMuls alone kept five within
# 0.0083, at least cosine 0.991 to PyTorch instead of 0.901 (benchmarks/RESULTS.md: gain.py's eval
# reports, benchmarks/throughput.py)
INT8_RECIPE = {"weight_type": "QInt8", "op_types_to_quantize": ("MatMul",), "per_channel": True}


def recipe_name(recipe: dict) -> str:
    """The recipe's name, in the export record and the int8 vectors' cache key: made from every argument, so a
    changed recipe makes its file and its vectors again. The recipe above is 'int8-matmul-per-channel'."""
    named = ("weight_type", "op_types_to_quantize", "per_channel")
    return "-".join([recipe["weight_type"].lower().removeprefix("q"),
                     *(op.lower() for op in recipe["op_types_to_quantize"]),
                     "per-channel" if recipe["per_channel"] else "per-tensor",
                     *(f"{k}={v}" for k, v in sorted(recipe.items()) if k not in named)])


INT8_RECIPE_NAME = recipe_name(INT8_RECIPE)


class ExportedEncoder:
    """An exported model run by OpenVINO or ONNX Runtime, with sentence-transformers' `encode` for the arguments
    embtune passes; texts are encoded longest first (as sentence-transformers does) so a batch carries little
    padding."""

    def __init__(self, export_dir: Path, runtime: str = "onnx", onnx_file: str = ONNX_FILE):
        from transformers import AutoTokenizer

        self.export_dir, self.runtime = Path(export_dir), runtime
        record = read_export_record(self.export_dir)
        self.max_seq_length, self.input_names = record["max_seq_length"], record["input_names"]
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.export_dir), local_files_only=True)
        self._run = _runner(self.export_dir / onnx_file, runtime)

    def encode(self, texts: Sequence[str], batch_size: int = 32, normalize_embeddings: bool = False,
               **_ignored) -> np.ndarray:
        texts = list(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[start:start + batch_size]]
            tokens = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_seq_length,
                                    return_tensors="np")
            out.append(self._run({name: tokens[name].astype(np.int64) for name in self.input_names}))
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.concatenate(out)[np.argsort(order)].astype(np.float32)
        return normalized(vectors) if normalize_embeddings else vectors


def _runner(onnx_path: Path, runtime: str):
    """A function from the tokenizer's arrays to the sentence embeddings, in `runtime`."""
    if runtime == "openvino":
        import openvino

        compiled = openvino.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": _precision()})
        return lambda feed: np.asarray(compiled(feed)[0])
    if runtime == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        return lambda feed: session.run(None, feed)[0]
    raise ValueError(f"unknown runtime {runtime!r}: one of {', '.join(RUNTIMES)}")


def _precision() -> str:
    """What OpenVINO computes in on this CPU: bfloat16 where the CPU has it (its own reading of the CPU)."""
    import openvino

    return "bf16" if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def runtime_key(runtime: str) -> str:
    """What an agreement check holds for: the runtime, its version and, for OpenVINO, the precision it computes in
    here (a check made on a CPU without bfloat16 says nothing of one with it)."""
    if runtime == "openvino":
        import openvino

        return f"openvino {openvino.get_version()} {_precision()}"
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} fp32"


def normalized(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine between matching rows of two sets of vectors: how far two backends disagree."""
    return float((normalized(a) * normalized(b)).sum(axis=1).min())


def agreement_sample(texts: Sequence[str], n: int = AGREEMENT_SAMPLE) -> list[str]:
    """The longest and the shortest distinct texts: truncation and padding are where backends part."""
    distinct = sorted(set(texts), key=len)
    return distinct if len(distinct) <= n else distinct[: n // 2] + distinct[-(n - n // 2):]


def export_onnx(model, export_dir: Path) -> Path:
    """The sentence-transformers `model` (every module: transformer, pooling, normalize...) as one ONNX graph
    from token ids to the sentence embedding, with its tokenizer beside it: a directory ExportedEncoder loads."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner, names):
            super().__init__()
            self.inner, self.names = inner, names

        def forward(self, *inputs):
            return self.inner(dict(zip(self.names, inputs)))["sentence_embedding"]

    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    tokens = model.tokenizer(["an example", "a somewhat longer example sentence"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokens]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    tmp = export_dir / f"{ONNX_FILE}.{os.getpid()}.tmp"  # a name of its own: steps side by side may export
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes: the agreement check is the proof
        torch.onnx.export(SentenceEmbedding(model.cpu().eval(), names), tuple(tokens[n] for n in names), str(tmp),
                          input_names=names, output_names=["sentence_embedding"],
                          dynamic_axes={**axes, "sentence_embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    tmp.replace(export_dir / ONNX_FILE)
    model.tokenizer.save_pretrained(str(export_dir))
    _update_record(export_dir, {"max_seq_length": int(model.max_seq_length), "input_names": names})
    return export_dir / ONNX_FILE


def quantize_int8(export_dir: Path) -> Path:
    """The export with int8 weights (INT8_RECIPE: ONNX Runtime's dynamic quantization of the MatMuls, one scale
    per output channel), beside the fp32 one; run it with ExportedEncoder(export_dir, "onnx", INT8_FILE). An int8
    file made by another recipe is made again."""
    from filelock import FileLock
    from onnxruntime.quantization import QuantType, quantize_dynamic

    export_dir = Path(export_dir)
    target = export_dir / INT8_FILE
    with FileLock(str(export_dir / ".lock")):  # the record is shared with checked_runtime's updates
        if not target.exists() or read_export_record(export_dir).get("int8_recipe") != INT8_RECIPE_NAME:
            tmp = export_dir / f"{INT8_FILE}.{os.getpid()}.tmp"
            quantize_dynamic(str(export_dir / ONNX_FILE), str(tmp), **{
                **INT8_RECIPE, "weight_type": QuantType[INT8_RECIPE["weight_type"]],
                "op_types_to_quantize": list(INT8_RECIPE["op_types_to_quantize"])})
            tmp.replace(target)
            _update_record(export_dir, {"int8_recipe": INT8_RECIPE_NAME})
    return target


def read_export_record(export_dir: Path) -> dict:
    path = Path(export_dir) / EXPORT_RECORD
    return json.loads(path.read_text()) if path.exists() else {}


def _update_record(export_dir: Path, update: dict) -> dict:
    from embtune_pipeline.lib.storage import write_atomically

    record = {**read_export_record(export_dir), **update}
    write_atomically(Path(export_dir) / EXPORT_RECORD, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    return record


@dataclass
class Chosen:
    """The encoder a step uses and why: its backend, and the export's agreement with PyTorch when checked."""

    encoder: object
    backend: str
    least_cosine: Optional[float] = None
    reason: str = ""


class _Reference:
    """The PyTorch model, loaded once and only when asked for: the reference an export is checked against, and
    the fallback."""

    def __init__(self, model_path: Path, max_seq_length: int):
        self.model_path, self.max_seq_length, self._model = model_path, max_seq_length, None

    def __call__(self):
        from embtune_pipeline.lib.models import load_model

        if self._model is None:
            self._model = load_model(self.model_path, self.max_seq_length)
        return self._model


def checked_runtime(runtime: str, export_dir: Path, reference: Callable[[], object],
                    sample_texts: Sequence[str]) -> dict:
    """`runtime`'s agreement with PyTorch (`reference()` gives the model: loaded only when needed), as
    {"least_cosine": x, "checked_on": n}, measured once per export and runtime_key and recorded beside the export;
    {"error": why} when the runtime or the export failed (not recorded: the next step tries again). Under a lock:
    steps side by side export and check once."""
    from filelock import FileLock

    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(export_dir / ".lock")):
        try:
            key = runtime_key(runtime)
            known = read_export_record(export_dir).get("agreement", {})
            if key in known:
                return known[key]
            if not (export_dir / ONNX_FILE).exists():
                export_onnx(reference(), export_dir)
            sample = agreement_sample(sample_texts) or ["a sample text to check the export"]
            exported = ExportedEncoder(export_dir, runtime).encode(sample, normalize_embeddings=True)
            expected = reference().encode(sample, convert_to_numpy=True, normalize_embeddings=True)
        except Exception as e:  # not installed, or an architecture the exporter cannot trace: PyTorch it is
            why = redacted_excerpt(f"{type(e).__name__}: {e}", 500)
            log.warning("the %s backend is unavailable for the export in %s: %s", runtime, export_dir, why)
            return {"error": why}
        result = {"least_cosine": least_cosine(exported, expected), "checked_on": len(sample)}
        _update_record(export_dir, {"agreement": {**known, key: result}})
        return result


def choose_encoder(model_path: Path, max_seq_length: int, backend: str, export_dir: Path,
                   sample_texts: Sequence[str] = ()) -> Chosen:
    """The encoder for `backend`: torch; openvino or onnx (an error when its export disagrees with PyTorch: its
    vectors would not be the model's); auto, OpenVINO when it agrees on a CPU, PyTorch on a GPU or
    when it does not. The export is made once per model and max_seq_length (export_dir: beside that model's
    vectors) and each runtime's agreement recorded, so later steps neither export nor check again."""
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}: one of {', '.join(BACKENDS)}")
    reference = _Reference(model_path, max_seq_length)
    if backend == "torch" or (backend == "auto" and torch.cuda.is_available()):
        return Chosen(reference(), "torch", reason="asked for" if backend == "torch" else "a GPU: PyTorch")
    reasons = []
    for runtime in AUTO_RUNTIMES if backend == "auto" else (backend,):
        result = checked_runtime(runtime, export_dir, reference, sample_texts)
        cosine = result.get("least_cosine")
        if cosine is not None and cosine >= AGREEMENT:
            return Chosen(ExportedEncoder(export_dir, runtime), runtime, cosine, "agrees with PyTorch")
        reasons.append(f"{runtime}: least cosine {cosine} < {AGREEMENT}" if cosine is not None
                       else f"{runtime}: {result.get('error')}")
    if backend != "auto":
        raise RuntimeError(f"run.embed.backend is {backend}, but {reasons[0]} (checked on sample texts, recorded in "
                           f"{Path(export_dir) / EXPORT_RECORD}); set it to auto or torch")
    return Chosen(reference(), "torch", reason="; ".join(reasons))



def serving_exports(model_dir: Path, max_seq_length: int, sample_texts: Sequence[str],
                    prepared: Optional[Path] = None) -> tuple[Path, dict]:
    """model_dir/serving: the tuned model's fp32 export (copied from `prepared`, the export an encoder already
    made, when there is one) checked against PyTorch under ONNX Runtime on `sample_texts`, and, when it agrees,
    its int8 quantization: for a team that serves with ONNX Runtime or OpenVINO rather than PyTorch. Returns the
    folder and the fp32 export's agreement (checked_runtime)."""
    import shutil

    target = Path(model_dir) / SERVING_DIR
    if not (target / ONNX_FILE).exists() and prepared is not None and (Path(prepared) / ONNX_FILE).exists():
        shutil.copytree(prepared, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.tmp", "*.lock", INT8_FILE))
    agreement = checked_runtime("onnx", target, _Reference(Path(model_dir), max_seq_length), sample_texts)
    if agreement.get("least_cosine", 0) >= AGREEMENT:
        quantize_int8(target)
    return target, agreement


def timed_encode(encoder, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, float]:
    """The unit vectors of `texts` and the docs/s it took, after a warm-up batch (lazy initialisation is not
    speed)."""
    import time

    encoder.encode(list(texts[:batch_size]), batch_size=batch_size)
    start = time.perf_counter()
    vectors = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)
    return vectors, len(texts) / (time.perf_counter() - start)
