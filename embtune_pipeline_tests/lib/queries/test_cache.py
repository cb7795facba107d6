import logging
import os

import pandas as pd
import pytest

from embtune_pipeline.lib.queries.cache import SQLITE_FILES, AnswerCache, cache_key


def _filled(path, answers=2000):
    """A real cache of many pages (about 1 MB), closed so everything is in the main file."""
    cache = AnswerCache(path)
    cache.put_many({cache_key(i): f"answer {i} " + "x" * 400 for i in range(answers)}, "m")
    cache.close()
    return path


def _garbage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(9000))
    path.with_name(f"{path.name}-wal").write_bytes(os.urandom(500))  # its write-ahead log: part of its content


def _cut_mid_page(path):
    _filled(path)
    os.truncate(path, path.stat().st_size // 2 + 100)  # a write that stopped part way through a page


def _set_aside(path):
    """The copies of `path` set aside (not the WAL and shared-memory files beside them)."""
    return [p for p in path.parent.glob(f"{path.name}.corrupt-*") if not p.name.endswith(SQLITE_FILES)]


@pytest.mark.parametrize("damage", [_garbage, _cut_mid_page])
def test_a_damaged_cache_is_set_aside_with_its_bytes_and_a_fresh_one_works(tmp_path, caplog, damage):
    path = tmp_path / "cache" / "llm.sqlite"
    damage(path)
    damaged, wal = path.read_bytes(), path.with_name(f"{path.name}-wal")
    damaged_wal = wal.read_bytes() if wal.exists() else None
    with caplog.at_level(logging.WARNING):
        cache = AnswerCache(path)
    moved = _set_aside(path)
    assert len(moved) == 1 and moved[0].read_bytes() == damaged
    if damaged_wal is not None:  # moved with it, never replayed into the fresh cache
        assert moved[0].with_name(f"{moved[0].name}-wal").read_bytes() == damaged_wal
    assert f"{path} is damaged" in caplog.text and str(moved[0]) in caplog.text
    assert len(cache) == 0 and cache.get(cache_key(1)) is None
    cache.put(cache_key(1), "m", "fresh")
    cache.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = AnswerCache(path)
    assert again.get(cache_key(1)) == "fresh" and not caplog.text
    assert _set_aside(path) == moved
    again.close()


def test_a_run_with_a_damaged_cache_completes_and_asks_again_what_it_had_cached(openai_server, tmp_path):
    from embtune_pipeline.lib.queries.generate import generate_queries

    server = openai_server(replies=[(200, "1. how do I reset the Jaguar X1\n2. how long does the battery last",
                                     {}, 0.0)])
    chunks = pd.DataFrame({"chunk_id": ["c0", "c1", "c2"], "chunk_hash": ["h0", "h1", "h2"], "title": "",
                           "text": [f"Jaguar passage number {i}." for i in range(3)]})
    path = tmp_path / "cache" / "llm.sqlite"

    def run():
        cache = AnswerCache(path)
        try:
            return generate_queries(chunks, 2, "openai/fake-model", cache=cache, template="$passage",
                                    params={"api_base": server.api_base}, max_retry_seconds=0)
        finally:
            cache.close()

    first, _ = run()
    assert server.requests == 3
    path.write_bytes(b"not a database " * 500)  # e.g. a disk that filled up, or a bad copy
    again, stats = run()
    assert server.requests == 6 and stats.cache_hits == 0  # the three cached prompts asked again, nothing else
    assert again["query"].tolist() == first["query"].tolist()
    _, stats = run()
    assert server.requests == 6 and stats.cache_hits == 3  # and cached again
