"""What counts as a secret in user-given parameters: the one rule the settings check, the LLM cache key and the
MLflow params all apply. Secrets come from the environment only."""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "credential", "credentials", "auth",
                "authorization", "cookie", "bearer"}


def is_secret(name: str) -> bool:
    """Whole words only: api_key, auth_token, Authorization are secrets; max_tokens is not."""
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower())
    return any(w in SECRET_WORDS for w in words)


def secret_keys(params: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every secret-looking key, nested dicts included."""
    found = []
    for k, v in params.items():
        path = f"{prefix}{k}"
        if is_secret(k):
            found.append(path)
        elif isinstance(v, dict):
            found += secret_keys(v, f"{path}.")
    return found


def safe_params(params: dict) -> dict:
    """Flattened params without anything that looks like a secret (those come from the environment only)."""
    out = {}
    for k, v in params.items():
        if is_secret(k):
            continue
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in safe_params(v).items()})
        else:
            out[k] = v if isinstance(v, (int, float, bool)) else str(v)[:500]
    return out


REDACTED = "[redacted]"


def redact(text: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """`text` with the value of every secret-named environment variable (OPENAI_API_KEY, ...) blanked: a
    provider's error can echo the key it was sent, and errors are logged and stored."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if value and len(value) >= 6 and is_secret(name) and value in text:
            text = text.replace(value, REDACTED)
    return text


def redacted_excerpt(text: str, limit: int, environ: Optional[Mapping[str, str]] = None) -> str:
    """The first `limit` characters of `text` once its secrets are blanked (an error body or header to store or
    show): blanking first, so a key that runs across the cut is never kept in part."""
    shown = redact(str(text), environ)
    return shown if len(shown) <= limit else shown[:limit] + "..."
