"""When an index moves without anyone building it by hand: an `auto` index follows the champion (rebuilt by
the rollout sensor when it differs; moved back by `embtune rollback` with the champion)."""

from __future__ import annotations

from typing import Optional


def rollout_requests(indexes: list[tuple[str, str]], bound: dict[str, Optional[str]],
                     champion: Optional[str]) -> list[tuple[str, str]]:
    """(index, version to build) for each `auto` index whose table was not built by the champion.
    `indexes`: (name, rollout) from settings; `bound`: the version each index's pointer names (None: no table)."""
    if champion is None:
        return []
    return [(name, str(champion)) for name, rollout in indexes
            if rollout == "auto" and str(bound.get(name)) != str(champion)]


def stale_advice(index: str, rollout: str, version: Optional[str], champion: Optional[str]) -> Optional[str]:
    """What to say of an index not on the champion (None when it is, or there is no champion)."""
    if champion is None or str(version) == str(champion):
        return None
    on = f"on v{version}" if version is not None else "not built yet"
    if rollout == "auto":
        return f"{index} ({on}): rolling out v{champion} (vector_index_rollout_sensor builds it)"
    return f"{index} ({on}): roll to v{champion} with `embtune index build {index} --version {champion}`"
