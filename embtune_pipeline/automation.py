"""Jobs, sensors and the schedule: when re-tunes and re-evaluations run without anyone asking."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.lib.data.snapshots import changed_fraction, snapshot_key
from embtune_pipeline.partitions import BASE_MODELS, RETUNE_PARTITIONS, SNAPSHOTS, retune_key
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.vector_store import VectorStore
from embtune_pipeline.runner import release_dead_runs
from embtune_pipeline.settings import Settings

RETUNE_SELECTION = dg.AssetSelection.groups("data", "training") | dg.AssetSelection.assets(
    "base_model_eval", "baseline_eval", "eval_report", "registered_model")

retune_job = dg.define_asset_job(
    "retune", selection=RETUNE_SELECTION,
    partitions_def=RETUNE_PARTITIONS,
    description="Sample, generate, mine, train, evaluate and register one base model on one corpus snapshot.")
reevaluation_job = dg.define_asset_job(
    "quarterly_reevaluation", selection=dg.AssetSelection.assets("eval_history", "index_bindings"),
    description="The champion and its base on the current eval set; which indexes are stale.")
bindings_job = dg.define_asset_job(
    "refresh_index_bindings", selection=dg.AssetSelection.assets("index_bindings"),
    description="Re-read which model version each vector index was embedded with, next to the champion.")
ROLLOUT_SENSOR_SECONDS = 60  # how often the rollout sensor compares the champion with the auto indexes' versions
index_job = dg.define_asset_job(
    "build_vector_index", selection=dg.AssetSelection.assets("vector_index"),
    description="Embed the corpus snapshot with a registered version into a new table of one index, check it, "
    "then switch the index to it (config: version, snapshot; default: the champion, the latest snapshot).")
upgrade_job = dg.define_asset_job(
    "compare_base_models", selection=dg.AssetSelection.assets("base_model_upgrade"), partitions_def=SNAPSHOTS,
    description="New base zero-shot vs champion vs new base tuned, on one snapshot: re-tune, skip or switch.")


def corpus_change(s: Settings, source: CorpusSource, last_snapshot: str | None, known_base_models: set[str],
                  latest_snapshot: str | None) -> dg.SensorResult | dg.SkipReason:
    """The sensor's decision, apart from Dagster's context so it can be tested and reasoned about alone."""
    new_bases = [k for k in s.base_model_keys if k not in known_base_models]
    docs, quarantined = source.read_current()
    key = snapshot_key(docs)
    store = source.snapshots()
    why_not = None
    if key == last_snapshot:
        why_not = f"corpus unchanged: snapshot {key}"
    elif last_snapshot and store.exists(last_snapshot):
        fraction = changed_fraction(store.load(last_snapshot), docs)
        if fraction < s.retune.min_changed_fraction:
            why_not = (f"{fraction:.2%} of documents changed since snapshot {last_snapshot}, under "
                       f"retune.min_changed_fraction {s.retune.min_changed_fraction:.2%}: not worth a re-tune yet")
    if why_not and not new_bases:
        return dg.SkipReason(why_not)
    requests, partitions = [], []
    if new_bases:
        partitions.append(BASE_MODELS.build_add_request(new_bases))
    if why_not is None:
        snapshot = store.register(docs, quarantined, source=source.name)
        partitions.append(SNAPSHOTS.build_add_request([snapshot.key]))
        requests += [dg.RunRequest(partition_key=retune_key(b, snapshot.key), run_key=f"{b}|{snapshot.key}")
                     for b in s.base_model_keys]
        cursor = snapshot.key
    else:  # a new base model on an unchanged corpus: tune it on the latest snapshot, for the upgrade report
        cursor = last_snapshot
        if latest_snapshot:
            requests += [dg.RunRequest(partition_key=retune_key(b, latest_snapshot), run_key=f"{b}|{latest_snapshot}")
                         for b in new_bases]
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions, cursor=cursor)


def index_rollout(s: Settings, mlflow: MlflowResource, store: VectorStore) -> dg.SensorResult | dg.SkipReason:
    """The rollout sensor's decision (lib.serving.rollout), apart from Dagster's context."""
    from embtune_pipeline.lib.serving.rollout import rollout_requests

    auto = [(i.name, i.rollout) for i in s.indexes if i.rollout == "auto"]
    if not auto:
        return dg.SkipReason("no index has rollout: auto")
    champion = mlflow.registry().champion()
    bound = {name: (p.version if (p := store.pointer(name)) else None) for name, _ in auto}
    todo = rollout_requests(auto, bound, champion.version if champion else None)
    if not todo:
        return dg.SkipReason(f"every auto index serves the champion ({', '.join(bound) or 'none'})"
                             if champion else "no champion yet")
    return dg.SensorResult(run_requests=[
        dg.RunRequest(partition_key=name, run_key=f"{name}:v{version}:{champion.tags.get('promoted_at', '')}",
                      run_config={"ops": {"vector_index": {"config": {"version": version}}}})
        for name, version in todo])


def build_automation(s: Settings) -> tuple[list, list]:
    @dg.sensor(job=retune_job, minimum_interval_seconds=s.retune.sensor_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Re-tunes when the corpus content changed by at least retune.min_changed_fraction, "
               "and tunes any base model newly listed in settings.")
    def corpus_change_sensor(context: dg.SensorEvaluationContext, settings: SettingsResource,
                             corpus_source: CorpusSource):
        for run_id in release_dead_runs(context.instance):
            context.log.warning(f"run {run_id} had died without ending: marked failed, its concurrency slots freed")
        snapshots = context.instance.get_dynamic_partitions(SNAPSHOTS.name)
        latest = snapshots[-1] if snapshots else None
        # no cursor yet (a new sensor, a new daemon): compare with the latest snapshot `embtune run` registered,
        # so a corpus already tuned is not tuned again
        return corpus_change(settings.get(), corpus_source, context.cursor or latest,
                             set(context.instance.get_dynamic_partitions(BASE_MODELS.name)),
                             latest)

    @dg.asset_sensor(asset_key=dg.AssetKey("registered_model"), job=bindings_job,
                     default_status=dg.DefaultSensorStatus.RUNNING,
                     description="After each registry step, re-reads index bindings: flags indexes left stale.")
    def registry_changed_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        return dg.RunRequest(run_key=f"{asset_event.run_id}:{asset_event.timestamp}")

    @dg.sensor(job=index_job, minimum_interval_seconds=ROLLOUT_SENSOR_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Rolls every `rollout: auto` index out to the champion: requests a vector_index build "
               "when the champion is not the version the index's table was built with.")
    def vector_index_rollout_sensor(context: dg.SensorEvaluationContext, settings: SettingsResource,
                                    mlflow: MlflowResource, vector_store: VectorStore):
        return index_rollout(settings.get(), mlflow, vector_store)

    quarterly = dg.ScheduleDefinition(
        name="quarterly_reevaluation_schedule", job=reevaluation_job, cron_schedule=s.monitoring.cron,
        execution_timezone=s.monitoring.timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-evaluates the champion and its base on monitoring.eval_set; appends to eval_history.")
    return [corpus_change_sensor, registry_changed_sensor, vector_index_rollout_sensor], [quarterly]


JOBS = [retune_job, reevaluation_job, bindings_job, upgrade_job, index_job]
