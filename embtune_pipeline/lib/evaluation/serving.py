"""The serving exports measured like the tuned model: the int8 export's metrics on the same eval set, and every
form's encoding speed beside PyTorch's on the same texts (lib.encoders: the fp32 export agrees with PyTorch to a
cosine of AGREEMENT, so its metrics are the tuned model's; int8 is where quality can move). The fp32 export is timed
under OpenVINO too where it agrees there: on CPUs with bfloat16 it computes in it, and on SciFact's chunks it outran
int8 on this project's machine (benchmarks/RESULTS.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_texts
from embtune_pipeline.lib.embeddings import EmbeddingStore
from embtune_pipeline.lib.evaluation.evaluate import qrels_of, summarize
from embtune_pipeline.lib.evaluation.measure import agreement_texts, encode_with, scored
from embtune_pipeline.lib.progress import SILENT, Reporter

SPEED_SAMPLE = 256  # chunks each form encodes, timed, for docs/s
FORMS = {"torch": "the model folder under PyTorch", "onnx": "serving/model.onnx under ONNX Runtime",
         "int8": "serving/model_int8.onnx under ONNX Runtime", "openvino": "serving/model.onnx under OpenVINO"}


def measure_serving(model_dir: Path, max_seq_length: int, int8_store: EmbeddingStore, chunks: pd.DataFrame,
                    eval_set: pd.DataFrame, tuned_ndcg: float, batch_size: int = 64, samples: int = 1000,
                    reporter: Reporter = SILENT, prepared: Path | None = None) -> dict:
    """The report's `serving` section: the exports (lib.encoders.serving_exports) and the fp32 one's agreement
    with PyTorch; when it agrees, the int8 export's metrics on the eval set (its vectors cached in `int8_store`:
    a rerun encodes nothing) and its nDCG@10 minus the tuned model's, and docs/s of PyTorch, the fp32 export and
    the int8 one (and the fp32 one under OpenVINO, where it agrees too) on the same SPEED_SAMPLE chunks, and the
    fastest of them. An export that disagrees is reported, not measured."""
    from embtune_pipeline.lib.encoders import (
        AGREEMENT,
        INT8_FILE,
        ONNX_FILE,
        ExportedEncoder,
        checked_runtime,
        serving_exports,
        timed_encode,
    )
    from embtune_pipeline.lib.models import load_model

    _, texts, _ = qrels_of(eval_set)
    sample_texts = agreement_texts(chunks, texts)
    export_dir, agreement = serving_exports(model_dir, max_seq_length, sample_texts, prepared)
    if agreement.get("least_cosine", 0) < AGREEMENT:
        return {"export_dir": str(export_dir), "fp32_agreement": agreement,
                "skipped": f"the ONNX export does not agree with PyTorch (cosine >= {AGREEMENT} on every sample "
                           f"text): no serving form is published"}
    int8 = ExportedEncoder(export_dir, "onnx", INT8_FILE)
    measured = scored(encode_with(int8, int8_store, int8, int8_store, chunks, texts, batch_size, reporter,
                                  "the int8 export"), chunks, eval_set)
    metrics = {m: v["mean"] for m, v in summarize(measured.per_query, samples).items()}
    sample = chunk_texts(chunks.head(SPEED_SAMPLE))
    tuned = load_model(model_dir, max_seq_length)
    forms = {"torch": tuned, "onnx": ExportedEncoder(export_dir, "onnx"), "int8": int8}
    # recorded beside the export the encoder made (copied with it), so usually known without encoding anything
    openvino = checked_runtime("openvino", export_dir, lambda: tuned, sample_texts)
    if openvino.get("least_cosine", 0) >= AGREEMENT:
        forms["openvino"] = ExportedEncoder(export_dir, "openvino")
    rates = {name: timed_encode(encoder, sample, batch_size)[1] for name, encoder in forms.items()}
    return {"export_dir": str(export_dir), "files": [ONNX_FILE, INT8_FILE], "fp32_agreement": agreement,
            "openvino_agreement": openvino, "fastest": _fastest(rates),
            "int8": metrics,
            "int8_ndcg@10_minus_tuned": metrics["ndcg@10"] - tuned_ndcg, "int8_texts_encoded": measured.encoded,
            "speed_sample": len(sample),
            "docs_per_s": {k: round(v, 2) for k, v in rates.items()},
            "int8_speedup_vs_torch": round(rates["int8"] / rates["torch"], 2)}


def _fastest(rates: dict[str, float]) -> dict:
    """The form that encoded the speed sample fastest, what runs it, and its docs/s over PyTorch's."""
    form = max(rates, key=rates.get)
    return {"form": form, "runs": FORMS[form], "vs_torch": round(rates[form] / rates["torch"], 2)}
