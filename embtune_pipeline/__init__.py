"""embtune: teach an embedding model an organization's own semantic space, and keep it taught.

Importing the package sets the environment every entry point needs (the CLI, the code location, the benchmarks,
the tests), before torch, transformers, litellm or MLflow read it. A value already set is left as it is."""

import os

PROCESS_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",  # weights come from disk only: never a download
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's bundled price table: no fetch at import
    "TOKENIZERS_PARALLELISM": "false",  # no fork warnings from the tokenizers' thread pool
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # "Loading weights" bars in logs: the steps report progress themselves
    "TQDM_DISABLE": "1",  # the same for libraries that call tqdm directly (sentence-transformers' model card)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
for _name, _value in PROCESS_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
