"""registered_model against a real local MLflow store: a rollback stands when the same model is registered again."""

import dagster as dg

from embtune_pipeline.assets.registry import registered_model
from embtune_pipeline.lib.evaluation.evaluate import METRICS
from embtune_pipeline.partitions import retune_key
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings

REPORT = {"promotable": True, "eval_set": {"source": "real", "synthetic": False, "queries": 12},
          "base": dict.fromkeys(METRICS, 0.5), "finetuned": dict.fromkeys(METRICS, 0.6),
          "comparison": {"ci_low": 0.02}}


def trained(mlflow: MlflowResource, name: str) -> dict:
    """What finetuned_model hands registered_model: a training run (no model files are needed to register)."""
    run_id = mlflow.tracker().start_training(name, {}, {})
    return {"mlflow_run_id": run_id, "mlflow_model_uri": f"runs:/{run_id}/model", "model_dir": f"/models/{name}",
            "base_model": "tiny", "training_key": name}


def register(mlflow: MlflowResource, model: dict, snapshot: str) -> dict:
    context = dg.build_asset_context(partition_key=retune_key("tiny", snapshot))
    output = registered_model(context=context, mlflow=mlflow, eval_report=REPORT, finetuned_model=model)
    return {k: getattr(v, "value", v) for k, v in output.metadata.items()}


def test_a_rerun_of_a_rolled_back_version_keeps_the_champion(write_settings, tmp_path, capfd):
    mlflow = MlflowResource(settings=corpus_settings(write_settings, tmp_path))
    registry = mlflow.registry()
    first, second = trained(mlflow, "m1"), trained(mlflow, "m2")
    assert register(mlflow, first, "s1")["alias"] == "champion"
    assert register(mlflow, second, "s2")["previous_champion"] == "1"
    assert registry.rollback() == ("2", "1")

    again = register(mlflow, second, "s2")  # `embtune run` of the same snapshot reuses the model: v2 again
    assert registry.champion().version == "1"
    assert again["version"] == "2" and again["alias"] == "(champion kept)"
    assert again["champion_kept"].startswith("champion kept: v1 (v2 was rolled back at ")
    assert "`embtune promote 2`" in again["champion_kept"]
    assert "WARNING - system - champion kept: v1 (v2 was rolled back at " in capfd.readouterr().err  # the log

    newer = register(mlflow, trained(mlflow, "m3"), "s3")  # a new version still takes over
    assert (newer["alias"], newer["previous_champion"]) == ("champion", "1")

    assert registry.promote("2") == "3"  # a person's promote overrides the rollback...
    assert "rolled_back_at" not in registry.get("2").tags
    assert register(mlflow, second, "s2")["alias"] == "champion"  # ...so a rerun of v2 keeps it champion
    assert registry.champion().version == "2"
