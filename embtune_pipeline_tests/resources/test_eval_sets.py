"""The eval-set builder resource: which models it pools from."""

import json
import os

from embtune_pipeline.resources.eval_sets import EvalSetBuilder
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_pool_takes_the_newest_tuned_model_still_on_disk(write_settings, tmp_path, tiny_model):
    settings = corpus_settings(write_settings, tmp_path)
    s = settings.get()
    builder = EvalSetBuilder(settings=settings)
    base_key = s.base_model_keys[0]
    assert builder.retrievers(base_key) == {"base": str(tiny_model)}  # nothing tuned yet
    for i, (snapshot, model_dir) in enumerate((("old", tmp_path / "m-old"), ("new", tmp_path / "m-new"),
                                               ("gone", tmp_path / "m-deleted"))):
        report = s.layout.asset("eval_report", f"{base_key}|{snapshot}", ".json")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"model_dir": str(model_dir)}))
        os.utime(report, (1000 + i, 1000 + i))
    (tmp_path / "m-old").mkdir()
    (tmp_path / "m-new").mkdir()
    assert builder.retrievers(base_key, ["/x/other"]) == {"base": str(tiny_model), "tuned": str(tmp_path / "m-new"),
                                                         "model other": "/x/other"}
