"""A teacher through the real assets on tiny data: it judges the mining, labels the rows, and a rerun pays for
nothing twice."""

import pytest

from embtune_pipeline_tests.conftest import asset_metadata, read_stored, run_pipeline, tiny_run_defaults

pytestmark = pytest.mark.slow

UP_TO_TRAINING = "*finetuned_model"


def test_a_local_teacher_labels_the_rows_the_student_learns_from(jaguar_beir, write_settings, tmp_path, tiny_teacher):
    run = tiny_run_defaults()
    run["mining"]["round_trip_k"] = 3
    run["train"].update({"epochs": 3, "distill_weight": 0.5, "corpus_only_max_pairs": 40})
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, run=run, qa_pairs=None,
                              teacher=str(tiny_teacher))  # corpus-only: the pair budget holds
    result = run_pipeline(settings, selection=UP_TO_TRAINING)
    assert result.success
    rows = read_stored(tmp_path / "data", "hard_negatives")
    meta = asset_metadata(result, "hard_negatives")
    assert meta["teacher"] == tiny_teacher.name and meta["teacher_kind"] == "bi-encoder"
    assert meta["teacher_encoded"] > 0 and meta["teacher_estimated_usd"] == 0
    assert len(rows) <= 40 and meta["pairs_not_mined_corpus_only_step_budget"] > 0
    assert all(len(s) == 2 for s in rows["teacher_scores"])  # [positive, negative_1]
    # the teacher is the judge: no negative it scores at or above its positive
    assert all(s[1] < s[0] for s in rows["teacher_scores"])
    check = meta["teacher_check"]
    assert check["queries"] > 0 and 0 <= check["base_mrr"] <= 1 and 0 <= check["teacher_mrr"] <= 1
    assert check["teacher_is_stronger"] == (check["teacher_mrr"] > check["base_mrr"])
    trained = asset_metadata(result, "finetuned_model")
    assert trained["steps"] <= 5 and trained["stopped_by_step_budget"] is True
    assert trained["loss"] == "MixedLoss"  # distillation and MNRL, from one forward pass

    again = run_pipeline(settings, selection="hard_negatives")
    assert asset_metadata(again, "hard_negatives")["teacher_encoded"] == 0  # every teacher vector cached
