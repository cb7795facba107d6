"""The maintenance loop through Dagster: champion, quarterly re-evaluation, stale indexes, rollback, and the
base-model upgrade report."""

import json
import shutil

import dagster as dg
import pytest

from embtune_pipeline import cli
from embtune_pipeline.definitions import build_definitions
from embtune_pipeline.lib.registry.versions import ModelRegistry, bind_index
from embtune_pipeline.runner import execute_retune
from embtune_pipeline.settings import load_settings
from embtune_pipeline_tests.conftest import asset_metadata, run_pipeline

pytestmark = pytest.mark.slow

LEARNS = {"ops": {"finetuned_model": {"config": {"learning_rate": 1e-3, "epochs": 4}}}}


def checks_of(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def edit_one_document(beir_dir) -> None:
    path = beir_dir / "corpus.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["text"] += " Revised in release 3."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_champion_reevaluation_stale_index_and_rollback(jaguar_beir, write_settings, tmp_path, capsys):
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"})
    s = load_settings(settings)
    defs, instance = build_definitions(str(settings)), dg.DagsterInstance.ephemeral()
    registry = ModelRegistry(s.mlflow_tracking_uri, "embtune")
    quarterly = defs.get_job_def("quarterly_reevaluation")

    first = run_pipeline(settings, run_config=LEARNS, instance=instance)
    assert asset_metadata(first, "registered_model")["alias"] == "champion"
    bind_index(s.layout.index_bindings, "docs-prod", "embtune", registry.champion().version)
    sensor = defs.get_sensor_def("registry_changed_sensor")
    refresh = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    assert len(refresh.run_requests) == 1 and sensor.job_name == "refresh_index_bindings"

    q1 = quarterly.execute_in_process(instance=instance)
    history = asset_metadata(q1, "eval_history")
    assert history["rows"] == 1 and history["champion_version"] == "1"
    assert history["lead"] == pytest.approx(history["champion_ndcg@10"] - history["base_ndcg@10"])
    assert checks_of(q1)["indexes_use_champion"].passed

    edit_one_document(jaguar_beir)  # a new snapshot; a re-tune with the same base model takes over
    second = run_pipeline(settings, run_config={"ops": {"finetuned_model": {"config": {
        "learning_rate": 1e-3, "epochs": 4, "seed": 1}}}}, instance=instance)
    assert asset_metadata(second, "registered_model")["previous_champion"] == "1"
    assert registry.champion().version == "2"

    first_snapshot = instance.get_dynamic_partitions("corpus_snapshots")[0]
    backfill = execute_retune(defs, instance, s.base_model_keys[0], first_snapshot, run_config=LEARNS)
    assert asset_metadata(backfill, "registered_model")["alias"] == "(unchanged)"  # no step back by backfill
    assert registry.champion().version == "2"

    q2 = quarterly.execute_in_process(instance=instance)
    assert asset_metadata(q2, "eval_history")["rows"] == 2
    stale = checks_of(q2)["indexes_use_champion"]
    assert not stale.passed and stale.metadata["stale"].value == {"docs-prod": "1"}
    assert "champion_holds_lead" in checks_of(q2)

    assert cli.main(["--config", str(settings), "rollback"]) == 0
    assert "champion: embtune v1 (rolled back from v2)" in capsys.readouterr().out
    q3 = quarterly.execute_in_process(instance=instance)
    assert checks_of(q3)["indexes_use_champion"].passed  # docs-prod serves the champion again

    v2 = registry.client.get_model_version("embtune", "2")
    weak = registry.register(v2.run_id, v2.source, {"promotable": False})
    with pytest.raises(SystemExit, match="is not promotable"):
        cli.main(["--config", str(settings), "promote", weak.version])
    with pytest.raises(SystemExit, match="embtune: .*99"):
        cli.main(["--config", str(settings), "promote", "99"])
    assert registry.champion().version == "1"


def test_a_new_base_model_is_compared_with_the_champion_before_anyone_switches(
        jaguar_beir, write_settings, tiny_model, tmp_path):
    twin = tmp_path / "tiny-twin"
    shutil.copytree(tiny_model, twin)  # a "new" base model that is in fact the same weights
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, base_models=[str(tiny_model)])
    instance = dg.DagsterInstance.ephemeral()
    run_pipeline(settings, run_config=LEARNS, instance=instance)

    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"},
                              base_models=[str(tiny_model), str(twin)])
    tuned_twin = run_pipeline(settings, run_config=LEARNS, instance=instance, base_model="tiny-twin")
    registered = asset_metadata(tuned_twin, "registered_model")
    assert registered["alias"] == "challenger" and "another base model" in registered["reason"]

    snapshot = instance.get_dynamic_partitions("corpus_snapshots")[-1]
    defs = build_definitions(str(settings))
    result = defs.get_job_def("compare_base_models").execute_in_process(instance=instance, partition_key=snapshot)
    report = result.output_for_node("base_model_upgrade")
    twin_verdict = report["candidates"]["tiny-twin"]
    assert twin_verdict["recommendation"] == "skip"  # the same weights cannot beat the champion
    assert twin_verdict["zero_shot_ndcg@10"] < twin_verdict["champion_ndcg@10"]
    assert report["eval_queries"] > 0 and report["champion_version"] == "1"
