"""Encoding and training throughput, side by side in one process on the same texts.

    python benchmarks/throughput.py BEIR_DIR [--docs 512] [--pairs 256] [--batch-size 32] [--max-seq-length 256]
                                    [--skip-training] [--repeats 2] [--out DIR]

Encoding: the first --docs documents of BEIR_DIR (title and text, as chunks are embedded), encoded by the default
base model with PyTorch, then with each encode-only backend of lib.encoders (OpenVINO and ONNX Runtime on the
fp32 export, ONNX Runtime on the int8 export), after a warm-up batch each; prints docs/s, the ratio to PyTorch
and each backend's least cosine to PyTorch's vectors over every text. On a GPU PyTorch is the only backend.

Training: pairs/s of embtune's trainer (lib.training.train.train_model: MNRL, one epoch over --pairs real BEIR
train pairs, the precision run.train.precision's auto picks, no validation) against a plain sentence-transformers
SentenceTransformerTrainer with the same loss, batch, sequence length, precision and no-duplicates sampler: after a
warm-up step, each runs --repeats times in turn and its fastest run counts (the first training in a process is the
slowest, whichever trainer it is).

Prints one JSON line, the last (the plain trainer logs its own summary before it). Runs take a few minutes on
2 CPU cores; nothing else should run meanwhile."""

import argparse
import json
import tempfile
import time
from pathlib import Path

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def documents(beir_dir: Path, n: int) -> list[str]:
    from embtune_pipeline.lib.data.chunking import embedding_text
    from embtune_pipeline.lib.data.ingest import read_documents

    docs, _ = read_documents(beir_dir, "beir", id_column="_id")
    docs = docs.head(n)
    return [embedding_text(t or "", x or "") for t, x in zip(docs["title"], docs["text"])]


def encoding(texts: list[str], max_seq_length: int, batch_size: int, export_dir: Path) -> dict:
    import torch

    from embtune_pipeline.lib.encoders import (
        INT8_FILE,
        ExportedEncoder,
        export_onnx,
        least_cosine,
        quantize_int8,
        timed_encode,
    )
    from embtune_pipeline.lib.models import load_model, resolve_model_path
    from embtune_pipeline.settings.schema import DEFAULT_BASE_MODEL

    model = load_model(resolve_model_path(DEFAULT_BASE_MODEL), max_seq_length)
    reference, torch_rate = timed_encode(model, texts, batch_size)
    out = {"docs": len(texts), "torch_docs_per_s": round(torch_rate, 2)}
    if torch.cuda.is_available():
        return out
    export_onnx(model, export_dir)
    quantize_int8(export_dir)
    for name, runtime, file in (("openvino", "openvino", "model.onnx"), ("onnx", "onnx", "model.onnx"),
                                ("int8", "onnx", INT8_FILE)):
        vectors, rate = timed_encode(ExportedEncoder(export_dir, runtime, file), texts, batch_size)
        out[name] = {"docs_per_s": round(rate, 2), "vs_torch": round(rate / torch_rate, 2),
                     "least_cosine": round(least_cosine(vectors, reference), 5)}
    return out


def training(beir_dir: Path, n_pairs: int, batch_size: int, max_seq_length: int, work: Path,
             precision: str | None = None, repeats: int = 2) -> dict:
    import torch
    from training import training_rows  # benchmarks/training.py: real train pairs, another's passage as negative

    from embtune_pipeline.lib.models import resolve_model_path
    from embtune_pipeline.lib.training.train import TrainSpec, mixed_precision, train_model
    from embtune_pipeline.settings.schema import DEFAULT_BASE_MODEL, TrainKnobs

    rows = training_rows(beir_dir, n_pairs)
    base = resolve_model_path(DEFAULT_BASE_MODEL)
    precision = mixed_precision(precision or TrainKnobs().precision, torch.cuda.is_available())
    spec = TrainSpec(base, max_seq_length, epochs=1, batch_size=batch_size, save_steps=10_000, loss="mnrl",
                     mini_batch_size=0, precision=precision)
    # the first training in a process pays for thread pools, kernels and allocations the next reuses: a warm-up
    # step first, then each trainer `repeats` times in turn, the fastest run of each counting
    plain_trainer(base, rows.head(batch_size), batch_size, max_seq_length, precision, work / "warm-up")
    ours_seconds, plain_seconds = [], []
    for r in range(repeats):
        ours = train_model(spec, rows, work / f"embtune-{r}", work / f"embtune-ckpt-{r}")
        ours_seconds.append(ours.train_seconds)
        plain_seconds.append(plain_trainer(base, rows, batch_size, max_seq_length, precision, work / f"plain-{r}"))
    ours_rate, plain_rate = len(rows) / min(ours_seconds), len(rows) / min(plain_seconds)
    return {"pairs": len(rows), "batch_size": batch_size, "max_seq_length": max_seq_length, "precision": precision,
            "repeats": repeats, "embtune_seconds": [round(x, 1) for x in ours_seconds],
            "plain_seconds": [round(x, 1) for x in plain_seconds],
            "embtune_pairs_per_s": round(ours_rate, 2), "plain_pairs_per_s": round(plain_rate, 2),
            "embtune_vs_plain": round(ours_rate / plain_rate, 3)}


def plain_trainer(base: Path, rows, batch_size: int, max_seq_length: int, precision: str, out: Path) -> float:
    """The same training as sentence-transformers' documentation writes it: seconds the trainer's train() took."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    model = SentenceTransformer(str(base), local_files_only=True)
    model.max_seq_length = max_seq_length
    cpu = not torch.cuda.is_available()
    args = Args(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=batch_size, warmup_steps=0.1,
                learning_rate=3e-5, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
                disable_tqdm=True, bf16=precision == "bf16", fp16=precision == "fp16",
                use_cpu=cpu and precision == "bf16", seed=0)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_pandas(rows),
                                         loss=MultipleNegativesRankingLoss(model))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--encode-batch-size", type=int, default=64)
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each trainer, in turn; the fastest counts")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="default: run.train.precision")
    ap.add_argument("--out", type=Path, help="where the export is written (default: a temporary folder)")
    args = ap.parse_args()

    import torch

    with tempfile.TemporaryDirectory(prefix="embtune-throughput-") as tmp:
        work = args.out or Path(tmp)
        result = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  "threads": torch.get_num_threads(),
                  "encoding": encoding(documents(args.beir_dir, args.docs), args.max_seq_length,
                                       args.encode_batch_size, work / "export")}
        if not args.skip_training:
            result["training"] = training(args.beir_dir, args.pairs, args.batch_size, args.max_seq_length, work,
                                          args.precision, args.repeats)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
