"""What paid calls will cost, estimated before any is made (litellm's local price map, or a price the settings
give), and the budget that refuses them: a team learns the bill before it runs up, not after."""

from __future__ import annotations

from typing import Iterable, Optional

from embtune_pipeline.lib.queries.local_llm import PROVIDER as LOCAL_PROVIDER  # models run in this process: free


class BudgetExceeded(RuntimeError):
    """Estimated cost above the budget, or no way to estimate it: nothing was called."""


def count_tokens(model: str, texts: Iterable[str]) -> int:
    """Tokens of the texts as litellm counts them for this model (its tokenizer when it knows one, else
    OpenAI's cl100k, bundled with litellm: nothing is downloaded)."""
    import litellm

    return sum(litellm.token_counter(model=model, text=t) for t in texts)


def usd_per_token(model: str, usd_per_million_tokens: Optional[float] = None) -> Optional[tuple[float, float]]:
    """(input, output) price per token: the settings' price when given (for both), else litellm's map; 0 for
    embtune's in-process models; None when nobody knows it."""
    if usd_per_million_tokens is not None:
        return usd_per_million_tokens / 1e6, usd_per_million_tokens / 1e6
    if model.startswith(f"{LOCAL_PROVIDER}/"):
        return 0.0, 0.0
    import litellm

    try:
        info = litellm.get_model_info(model)
    except Exception:  # litellm raises its own "not mapped" error for a model it has no price for
        return None
    return float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0)


def estimate_usd(model: str, input_tokens: int, output_tokens: int = 0,
                 usd_per_million_tokens: Optional[float] = None) -> Optional[float]:
    price = usd_per_token(model, usd_per_million_tokens)
    return None if price is None else input_tokens * price[0] + output_tokens * price[1]


def check_budget(what: str, model: str, usd: Optional[float], budget_usd: float, setting: str) -> None:
    """Refuse before calling: a cost above `budget_usd` (the setting named `setting`), or one that cannot be
    estimated because the model has no known price."""
    if usd is None:
        raise BudgetExceeded(
            f"{what}: {model!r} has no price in litellm's cost map, so its cost cannot be estimated before calling; "
            "give its price as usd_per_million_tokens in the settings (0 for a self-hosted server)")
    if usd > budget_usd:
        raise BudgetExceeded(
            f"{what} would cost about ${usd:.6f}, above {setting} (${budget_usd:g}); nothing was called. Raise "
            f"{setting}, or send fewer texts")
