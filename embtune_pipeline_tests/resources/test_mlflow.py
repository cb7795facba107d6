"""The MLflow resource."""


from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_mlflow_resource_builds_both_clients_from_the_settings(write_settings, tmp_path):
    settings = corpus_settings(write_settings, tmp_path)
    mlflow = MlflowResource(settings=settings)
    s = settings.get()
    assert mlflow.registry().name == s.registry.model_name
    assert mlflow.tracker().run_url("abc").startswith(s.mlflow.ui_url)
    assert SettingsResource.of(s).get() is s  # settings already loaded are not read again
