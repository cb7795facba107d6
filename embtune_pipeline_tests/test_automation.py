"""The corpus-change sensor and the quarterly schedule, evaluated as the Dagster daemon would."""

import datetime as dt

import dagster as dg
import pytest

from embtune_pipeline.definitions import build_definitions
from embtune_pipeline.partitions import RETUNE_PARTITIONS
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline_tests.conftest import write_jsonl


def docs(n: int, edited: int = 0) -> list[dict]:
    return [{"id": f"d{i}", "title": f"Jaguar note {i}",
             "text": f"Jaguar note {i} explains setting {i}." + (" Revised." if i < edited else "")}
            for i in range(n)]


class Tick:
    """A sensor evaluation, as the daemon reads it."""

    def __init__(self, result):
        skip = isinstance(result, dg.SkipReason)
        self.run_requests = [] if skip else list(result.run_requests or [])
        self.skip_message = result.skip_message if skip else None
        self.cursor = None if skip else result.cursor
        self.dynamic_partitions_requests = [] if skip else list(result.dynamic_partitions_requests or [])


def tick(defs, instance, settings_path, cursor=None) -> Tick:
    sensor = defs.get_sensor_def("corpus_change_sensor")
    settings = SettingsResource(config_path=str(settings_path))
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources={"settings": settings,
                                            "corpus_source": CorpusSource(settings=settings)}) as context:
        return Tick(sensor(context))


def apply(instance, data: Tick):
    """What the daemon does with a tick: add the partitions, then launch runs whose keys must now exist."""
    for request in data.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        for request in data.run_requests:
            assert RETUNE_PARTITIONS.has_partition_key(request.partition_key)


def test_the_sensor_fires_on_a_worthwhile_change_and_not_otherwise(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(100))
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"}, retune={"min_changed_fraction": 0.05})
    defs, instance = build_definitions(str(settings)), dg.DagsterInstance.ephemeral()

    first = tick(defs, instance, settings)
    assert len(first.run_requests) == 1
    snapshot = first.cursor
    request = first.run_requests[0]
    assert request.partition_key.keys_by_dimension["snapshot"] == snapshot
    assert (tmp_path / "data" / "snapshots" / f"{snapshot}.parquet").exists()
    apply(instance, first)
    assert instance.get_dynamic_partitions("corpus_snapshots") == [snapshot]

    unchanged = tick(defs, instance, settings, cursor=snapshot)
    assert unchanged.run_requests == [] and "corpus unchanged" in unchanged.skip_message

    write_jsonl(corpus, docs(100, edited=3))  # 3% < 5%: not worth a re-tune yet
    small = tick(defs, instance, settings, cursor=snapshot)
    assert small.run_requests == [] and "3.00% of documents changed" in small.skip_message

    write_jsonl(corpus, docs(100, edited=6))  # 6%, counted against the last tuned snapshot
    changed = tick(defs, instance, settings, cursor=snapshot)
    assert len(changed.run_requests) == 1 and changed.cursor not in (None, snapshot)
    apply(instance, changed)
    assert instance.get_dynamic_partitions("corpus_snapshots") == [snapshot, changed.cursor]


def test_a_sensor_without_cursor_does_not_retune_what_embtune_run_registered(write_settings, tmp_path):
    from embtune_pipeline.runner import register_snapshot
    from embtune_pipeline.settings import load_settings

    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(20))
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"})
    defs, instance = build_definitions(str(settings)), dg.DagsterInstance.ephemeral()
    snapshot = register_snapshot(instance, load_settings(settings)).key
    fresh = tick(defs, instance, settings)  # a new daemon: the sensor has no cursor yet
    assert fresh.run_requests == [] and f"corpus unchanged: snapshot {snapshot}" in fresh.skip_message
    write_jsonl(corpus, docs(20, edited=5))
    changed = tick(defs, instance, settings)
    assert len(changed.run_requests) == 1 and changed.cursor != snapshot


def test_a_base_model_added_to_settings_becomes_a_partition_tuned_on_the_latest_snapshot(
        write_settings, tiny_model, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(20))
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"})
    instance = dg.DagsterInstance.ephemeral()
    first = tick(build_definitions(str(settings)), instance, settings)
    apply(instance, first)

    upgraded = write_settings(corpus={"path": str(corpus), "format": "jsonl"},
                              base_models=[str(tiny_model), "all-MiniLM-L6-v2"])
    second = tick(build_definitions(str(upgraded)), instance, upgraded, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == [f"all-minilm-l6-v2|{first.cursor}"]
    apply(instance, second)
    assert "all-minilm-l6-v2" in instance.get_dynamic_partitions("base_models")


def test_the_quarterly_schedule_requests_the_reevaluation(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(10))
    defs = build_definitions(str(write_settings(corpus={"path": str(corpus), "format": "jsonl"})))
    schedule = defs.get_schedule_def("quarterly_reevaluation_schedule")
    assert schedule.cron_schedule == "0 6 1 1,4,7,10 *"
    assert schedule.job_name == "quarterly_reevaluation"
    job = defs.get_job_def("quarterly_reevaluation")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"eval_history", "index_bindings"}
    when = dt.datetime(2027, 4, 1, 6, 0, tzinfo=dt.timezone.utc)
    data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))
    assert len(data.run_requests) == 1


@pytest.mark.parametrize("cron", ["0 6 1 * *"])
def test_the_schedule_follows_settings(write_settings, tmp_path, cron):
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(10))
    defs = build_definitions(str(write_settings(corpus={"path": str(corpus), "format": "jsonl"},
                                                monitoring={"cron": cron})))
    assert defs.get_schedule_def("quarterly_reevaluation_schedule").cron_schedule == cron
