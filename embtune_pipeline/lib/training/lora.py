"""LoRA through peft: adapters injected into the transformer for training, folded back before saving."""

from __future__ import annotations


def add_lora(model, rank: int) -> None:
    """LoRA layers injected into the transformer in place (peft's own API); only they are trained."""
    from peft import LoraConfig, inject_adapter_in_model

    hf = model.transformers_model
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1,
                                       target_modules=_lora_targets(hf)), hf)
    for name, param in hf.named_parameters():
        param.requires_grad = "lora_" in name


def _lora_targets(hf) -> list[str]:
    """peft's default attention projections for the architecture, else every Linear's leaf name."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

    known = defaults.get(getattr(hf.config, "model_type", ""), None)
    if known:
        return list(known)
    import torch

    return sorted({n.rsplit(".", 1)[-1] for n, m in hf.named_modules() if isinstance(m, torch.nn.Linear)})


def merge_lora(model) -> None:
    """Fold LoRA weights into the base weights so the saved model is a plain sentence-transformers directory."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    hf = model.transformers_model
    for name, module in list(hf.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = hf.get_submodule(parent_name) if parent_name else hf
            setattr(parent, child, module.get_base_layer())
    for attr in ("peft_config", "_hf_peft_config_loaded"):
        if hasattr(hf, attr):
            try:
                delattr(hf, attr)
            except AttributeError:
                setattr(hf, attr, False)
