"""A settings resource over a small Jaguar corpus file, for the resource tests."""

from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline_tests.conftest import jaguar_docs, tiny_run_defaults, write_jsonl


def corpus_settings(write_settings, tmp_path, broken_row=False, run=None, **corpus) -> SettingsResource:
    """`run`: sections of the tests' run knobs to replace."""
    rows = [{"id": d["id"], "title": d["title"], "text": d["text"]} for d in jaguar_docs()[:6]]
    path = write_jsonl(tmp_path / "docs.jsonl", rows + ([{"id": "broken", "title": "t"}] if broken_row else []))
    return SettingsResource(config_path=str(write_settings(corpus={"path": str(path), "format": "jsonl", **corpus},
                                                           run={**tiny_run_defaults(), **(run or {})})))
