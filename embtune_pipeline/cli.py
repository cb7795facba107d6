"""`embtune`: the commands platform and on-call engineers run by hand.

    embtune run [--base-model KEY ...] [--wait] [-v]
                                           register the current corpus snapshot, then run the `retune` job for
                                           each base model on it: queued when a daemon serves the instance
                                           (--wait follows it to the end), else executed here; ends with a
                                           summary (verdict, nDCG@10, registry version, report, MLflow run)
    embtune snapshot                       register the current corpus snapshot; print its partition keys
    embtune snapshots                      every registered snapshot: when, documents, changes since the last
    embtune champion                       the champion and challenger versions
    embtune promote VERSION                make a registered version the champion
    embtune rollback                       move `champion` back to the version it replaced, and every
                                           `rollout: auto` index back to its table of that version
    embtune index build NAME [--version N] embed the latest snapshot with version N (default: the champion)
                                           into a new table of index NAME; check it; switch NAME to it
    embtune index search NAME "query"      the top hits (document id, score, snippet), the query encoded by the
                                           version that built NAME's table
    embtune index list                     each index, its table, its version, whether it is behind the champion
    embtune index rollback NAME            move index NAME back to the table it served before
    embtune bind-index INDEX [--version V] record that INDEX was embedded with version V (default: champion)
    embtune indexes                        every index binding, stale ones flagged
    embtune eval-set build --queries FILE  an eval set from real queries without judgments (a search log: a
                                           query a line, or a column of a CSV/JSONL/Parquet file): pool each
                                           query's candidates (base, newest tuned, baselines, BM25), judge them
                                           with the settings' LLM judge (or leave them to people), export it
    embtune label [--name NAME]            judge the pool in a page on 127.0.0.1 (saved as you go; resumes)
    embtune eval-set export [--name NAME]  write the eval-set file again; people vs LLM agreement (kappa)
    embtune ui                             the Dagster UI (with its daemon) and the MLflow UI on 127.0.0.1,
                                           stopped together with Ctrl-C

Settings come from $EMBTUNE_CONFIG (default: the bundled demo); runs go to the Dagster instance in
$DAGSTER_HOME, so they show in the UI like any other run. A queued run executes in the code location, with
the code location's settings: point $EMBTUNE_CONFIG at the same file there and here.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import cache, partial
from pathlib import Path


@cache
def _definitions(config: str | None):
    """The code location's Definitions, built once per command."""
    from embtune_pipeline.definitions import build_definitions

    return build_definitions(config)


def _resource(args, key: str):
    """A resource as the code location configures it (definitions.py), so the CLI reads the corpus and the
    registry that a deployment configured there, not a second copy of them."""
    return _definitions(args.config).resources[key]


def _registry(args):
    return _resource(args, "mlflow").registry(fail_fast=True)


def _instance():
    from embtune_pipeline.runner import open_instance

    if not os.environ.get("DAGSTER_HOME"):
        sys.exit("embtune: set DAGSTER_HOME (the README uses the repository folder) so runs are recorded")
    return open_instance()


def cmd_run(s, args) -> int:
    from embtune_pipeline.runner import daemon_serves_queue, register_snapshot

    instance = _instance()
    bases = args.base_model or s.base_model_keys
    unknown = [b for b in bases if b not in s.base_model_keys]
    if unknown:
        sys.exit(f"embtune: {unknown} not in the settings' base_models {s.base_model_keys}")
    snapshot = register_snapshot(instance, s, _resource(args, "corpus_source"))
    if daemon_serves_queue(instance):
        return _queue_runs(instance, bases, snapshot.key, args)
    return _run_here(instance, bases, snapshot.key, args)


def _run_here(instance, bases: list[str], snapshot: str, args) -> int:
    """The embedded default (no daemon): each `retune` run executes in this process."""
    from embtune_pipeline.partitions import retune_key
    from embtune_pipeline.runner import execute_retune, find_workspace

    defs = _definitions(args.config)
    try:
        workspace = find_workspace(args.workspace)
    except FileNotFoundError as e:
        workspace = None
        print(f"note: the run cannot be re-executed from the UI: {e}", flush=True)
    failed = 0
    for base in bases:
        print(f"retune {retune_key(base, snapshot)} (no daemon serves this instance: running here; "
              f"{'every Dagster event' if args.verbose else 'progress lines, -v for every Dagster event'})",
              flush=True)
        result = execute_retune(defs, instance, base, snapshot, raise_on_error=False, workspace=workspace,
                                log_level="DEBUG" if args.verbose else "INFO")
        failed += _summarize(instance, result.run_id)
    return 1 if failed else 0


def _summarize(instance, run_id: str) -> bool:
    """Print what the run found and where its results are; True when it failed."""
    from embtune_pipeline.runner import run_outcome

    outcome = run_outcome(instance, run_id)
    for line in summary_lines(outcome):
        print(line, flush=True)
    return outcome.status != "success"


def summary_lines(outcome) -> list[str]:
    """The run's verdict as an operator reads it after `embtune run`: what was measured, what it means, where
    the model and the report went."""
    from embtune_pipeline.lib.evaluation.report import signed
    from embtune_pipeline.lib.progress import duration
    from embtune_pipeline.lib.secrets import redacted_excerpt

    lines = [f"run {outcome.run_id}: {outcome.status} in {duration(outcome.seconds)}"]
    report = outcome.materialized.get("eval_report")
    if report:
        lines += [f"  eval set:    {report['eval_set']}",
                  f"  nDCG@10:     base {report['base_ndcg@10']:.4f} -> tuned {report['tuned_ndcg@10']:.4f} "
                  f"({signed(report['ndcg@10_delta'])}, 95% CI {signed(report['ndcg@10_delta_ci_low'])} to "
                  f"{signed(report['ndcg@10_delta_ci_high'])})",
                  f"  verdict:     {report['verdict']}"]
    registered = outcome.materialized.get("registered_model")
    if registered:
        lines.append(f"  registry:    {registered['registered']}")
        lines.append(f"               {registered['registry']}")
    elif report:
        lines.append("  registry:    nothing registered")
    if report:
        lines += [f"  report:      {report['report_file']}", f"  MLflow run:  {report['mlflow_run']}"]
    for name, text in outcome.warnings.items():
        if not report or text != report["verdict"]:  # the gate's warning is the verdict, already said
            lines.append(f"  warning:     {name}: {text}")
    for name, text in outcome.notes.items():  # passed, by design: what a trial's settings chose
        lines.append(f"  note:        {name}: {text}")
    for name, error in outcome.failures.items():
        lines.append(f"  FAILED:      {name}: {redacted_excerpt((error.splitlines() or [''])[0], 400)}")
    if outcome.status != "success" or not report:
        lines.append(f"  (the Dagster UI shows the run's event log: Runs -> {outcome.run_id[:8]})")
    lines.append("  UIs:         embtune ui (the same DAGSTER_HOME): the Dagster UI and the MLflow UI these links open")
    return lines


def _queue_runs(instance, bases: list[str], snapshot: str, args) -> int:
    """A daemon serves the instance: submit each `retune` run to its queue; with --wait, follow them."""
    import dagster as dg

    from embtune_pipeline.partitions import retune_key
    from embtune_pipeline.runner import find_workspace, submit_retune, wait_for_run

    workspace = find_workspace(args.workspace)
    runs = []
    for base in bases:
        try:
            run_id = submit_retune(workspace, base, snapshot)
        except RuntimeError as e:
            sys.exit(f"embtune: {e}")
        print(f"retune {retune_key(base, snapshot)}\n  run {run_id}: queued (the daemon launches it; "
              "see Runs in the Dagster UI)", flush=True)
        runs.append(run_id)
    if not args.wait:
        return 0

    def report(run_id: str, status: dg.DagsterRunStatus) -> None:
        if status != dg.DagsterRunStatus.QUEUED:  # already said
            print(f"  run {run_id}: {status.value.lower()}", flush=True)

    failed = 0
    for run_id in runs:
        wait_for_run(instance, run_id, on_status=partial(report, run_id))
        failed += _summarize(instance, run_id)
    return 1 if failed else 0


def cmd_snapshot(s, args) -> int:
    from embtune_pipeline.partitions import retune_key
    from embtune_pipeline.runner import register_snapshot

    snapshot = register_snapshot(_instance(), s, _resource(args, "corpus_source"))
    print(f"snapshot {snapshot.key} ({len(snapshot.documents)} documents, "
          f"{'new' if snapshot.new else 'already registered'}"
          f"{'; its stored copy was damaged and is written again' if snapshot.repaired else ''})")
    for base in s.base_model_keys:
        print(f"partition {retune_key(base, snapshot.key)}")
    return 0


def cmd_snapshots(s, args) -> int:
    from embtune_pipeline.lib.data.snapshots import change_between

    store = _resource(args, "corpus_source").snapshots()
    infos = store.registered()
    if not infos:
        print(f"no snapshots registered under {s.layout.snapshot('_').parent} (embtune snapshot registers one)")
        return 0
    print(f"{'snapshot':17} {'registered (UTC)':17} {'documents':>9} {'quarantined':>11}  since the previous")
    previous = None
    for info in infos:
        try:
            docs = store.load(info["key"])
            change = str(change_between(previous, docs)) if previous is not None else "(the first)"
        except (OSError, ValueError) as e:
            docs, change = None, f"unreadable: {e}"
        when = info.get("registered_at", "")[:16].replace("T", " ")
        print(f"{info['key']:17} {when:17} {info['documents']:>9} {info.get('quarantined_rows', 0):>11}  {change}")
        previous = docs if docs is not None else previous
    return 0


def cmd_champion(s, args) -> int:
    from embtune_pipeline.lib.registry.versions import CHALLENGER, CHAMPION

    registry = _registry(args)
    for alias in (CHAMPION, CHALLENGER):
        v = registry.by_alias(alias)
        if v is None:
            print(f"{alias}: (none)")
        else:
            print(f"{alias}: {registry.name} v{v.version} base={v.tags.get('base_model_key')} "
                  f"snapshot={v.tags.get('snapshot')} tuned_ndcg@10={v.tags.get('tuned_ndcg_at_10')} "
                  f"base_ndcg@10={v.tags.get('base_ndcg_at_10')}")
    return 0


def cmd_promote(s, args) -> int:
    registry = _registry(args)
    version = registry.get(args.version)
    if version.tags.get("promotable") != "True":
        sys.exit(f"embtune: {registry.name} v{args.version} is not promotable: it did not beat its base on real "
                 "queries (see its eval tags); a model that does not beat its baseline is never champion")
    previous = registry.promote(args.version)
    print(f"champion: {registry.name} v{args.version} (was v{previous})" if previous else
          f"champion: {registry.name} v{args.version}")
    return 0


def cmd_rollback(s, args) -> int:
    registry = _registry(args)
    try:
        old, new = registry.rollback()
    except ValueError as e:
        sys.exit(f"embtune: {e}")
    print(f"champion: {registry.name} v{new} (rolled back from v{old})")
    return _roll_back_auto_indexes(s, args, new)


def _roll_back_auto_indexes(s, args, version: str) -> int:
    """Every `rollout: auto` index moves back with the champion, to its kept table of `version`; one without
    such a table says so (the rollout sensor, or `embtune index build`, builds it)."""
    from embtune_pipeline.assets.serving import bind
    from embtune_pipeline.lib.serving.build import rollback_index
    from embtune_pipeline.lib.serving.tables import VectorIndexError

    store, failed = _resource(args, "vector_store"), 0
    for index in (i for i in s.indexes if i.rollout == "auto"):
        if store.pointer(index.name) is None:
            continue
        try:
            before, after = rollback_index(store, index.name, version, "rollback with the champion", bind(s))
        except VectorIndexError as e:
            print(f"index {index.name}: not moved: {e}")
            failed += 1
            continue
        print(f"index {index.name}: {after.table} (v{after.version}; was {before.table})" if before != after else
              f"index {index.name}: already on v{version} ({after.table})")
    return 1 if failed else 0


def cmd_bind_index(s, args) -> int:
    from embtune_pipeline.lib.registry.versions import bind_index

    registry = _registry(args)
    version = args.version
    if version is None:
        champion = registry.champion()
        if champion is None:
            sys.exit("embtune: no champion yet; pass --version")
        version = champion.version
    bound = registry.get(version)
    binding = bind_index(s.layout.index_bindings, args.index, registry.name, version, args.note or "")
    print(f"{args.index} -> {registry.name} v{binding['version']}")
    if bound.tags.get("promotable") == "False":  # registered as challenger: it never beat its base on real queries
        measured = bound.tags.get("eval_source", "")
        print(f"warning: {registry.name} v{version} is not promotable (measured on its {measured} eval set): an "
              "index embedded with it serves a model that was not shown to beat its base", file=sys.stderr)
    return 0


def cmd_indexes(s, args) -> int:
    from embtune_pipeline.lib.registry.versions import read_bindings, stale_indexes

    registry = _registry(args)
    champion = registry.champion()
    bindings = read_bindings(s.layout.index_bindings)
    stale = stale_indexes(bindings, registry.name, champion.version if champion else None)
    for name, b in sorted(bindings.items()):
        flag = f"  STALE: re-embed with the champion, {registry.name} v{champion.version}" if name in stale else ""
        print(f"{name}: {b['model']} v{b['version']} (bound {b['bound_at']}){flag}")
    if not bindings:
        print("(no index bindings)")
    return 2 if stale else 0


def cmd_index_build(s, args) -> int:
    """The vector_index asset for one index, executed here as a run of the instance (it shows in the UI)."""
    from embtune_pipeline.runner import run_outcome

    s.index(args.name)
    registry = _registry(args)
    version = registry.get(args.version) if args.version else registry.champion()  # a missing one: one line
    if version is None:
        sys.exit(f"embtune: {registry.name} has no champion yet: give a version "
                 f"(`embtune index build {args.name} --version N`)")
    instance = _instance()
    config = {k: v for k, v in (("version", version.version), ("snapshot", args.snapshot)) if v}
    print(f"index {args.name}: building with v{version.version}"
          f"{'' if args.version else ' (the champion)'}", flush=True)
    result = _definitions(args.config).resolve_job_def("build_vector_index").execute_in_process(
        partition_key=args.name, instance=instance, raise_on_error=False,
        run_config={"ops": {"vector_index": {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "DEBUG" if args.verbose else "INFO"}}}})
    outcome = run_outcome(instance, result.run_id)
    built = outcome.materialized.get("vector_index")
    if built:
        how = "already built" if built["build"] == "ready" else f"{built['build']} build"
        was = built["previous_table"]
        print(f"  table:   {built['table']} ({built['rows']} rows, v{built['model_version']}, {how}: "
              f"{built['encoded']} chunks encoded, {built['reused']} reused, {built['build_seconds']} s)\n"
              f"  check:   {built['check']}\n  serving: {args.name} -> {built['table']}"
              + (f" (was {was})" if was and was != built["table"] else " (unchanged)" if was else ""))
    for name, error in outcome.failures.items():
        first = (error.splitlines() or [""])[0]
        print(f"  FAILED:  {name}: {first.split('Error: ', 1)[-1] if 'Error: ' in first else first}")
    return 0 if result.success else 1


def cmd_index_search(s, args) -> int:
    from embtune_pipeline.serving import open_index

    index = open_index(args.name, args.config)
    hits = index.search([args.query], args.k)[0]
    print(f"{args.name}: {index.table} (v{index.version})")
    for hit in hits:
        snippet = " ".join(hit.text.split())
        print(f"  {hit.doc_id}  {hit.score:.4f}  {snippet[:100] + ('…' if len(snippet) > 100 else '')}")
    return 0


def cmd_index_list(s, args) -> int:
    registry = _registry(args)
    champion = registry.champion()
    store, behind = _resource(args, "vector_store"), 0
    for index in s.indexes:
        p = store.pointer(index.name)
        if p is None:
            print(f"{index.name}: (no table yet)  ({index.rollout}; `embtune index build {index.name}`)")
            continue
        state = ("no champion yet" if champion is None else "serves the champion" if p.version == champion.version
                 else f"BEHIND the champion v{champion.version}")
        behind += state.startswith("BEHIND")
        print(f"{index.name}: {p.table}  v{p.version}  ({index.rollout}; {state})")
    if not s.indexes:
        print("(no indexes in the settings)")
    return 2 if behind else 0


def cmd_index_rollback(s, args) -> int:
    from embtune_pipeline.assets.serving import bind
    from embtune_pipeline.lib.serving.build import rollback_index

    s.index(args.name)
    before, after = rollback_index(_resource(args, "vector_store"), args.name, on_switch=bind(s))
    print(f"index {args.name}: {after.table} (v{after.version}; was {before.table}, v{before.version})")
    return 0


def _eval_set_name(s, args) -> str:
    """--name, else the one eval set built under data_dir (several: the command asks which)."""
    if args.name:
        return args.name
    root = s.layout.eval_set_workspace("x").parent
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(names) != 1:
        sys.exit(f"embtune: give --name: eval sets under {root}: {names or 'none (run embtune eval-set build)'}")
    return names[0]


def cmd_eval_set_build(s, args) -> int:
    from embtune_pipeline.lib.progress import Reporter

    builder = _resource(args, "eval_sets")
    queries = args.queries or s.eval_set_builder.queries
    try:
        log = builder.read_log(queries, args.column)
    except ValueError as e:
        sys.exit(f"embtune: {e}")
    models = builder.retrievers(args.base_model or s.base_model_keys[0], args.model or [])
    source = _resource(args, "corpus_source")
    documents, _ = source.read_current()
    chunks, _ = source.chunk(documents, models["base"])
    name = args.name or Path(queries).stem
    print(f"eval set {name!r}: {len(log)} queries in {queries}", flush=True)
    summary = builder.build(
        name, log, chunks, documents, models, _resource(args, "embeddings"), _resource(args, "baselines"),
        args.judge, Reporter(say=lambda line: print(f"  {line}", flush=True), every=s.progress_seconds))
    export = summary["export"]
    judged = (f"judged by {summary['judge']}: {summary['judged']} candidates ({summary['llm_calls']} LLM calls, "
              f"{summary['cache_hits']} cached, estimated ${summary['estimated_usd']:.4f})"
              if "judge" in summary else "left for people to judge: embtune label --name " + name)
    use = (f"use it: eval_set: {{path: {summary['eval_set_file']}, score_column: score}}" if export["judgments"]
           else "nothing judged yet: nothing to use")
    print(f"  {summary['queries']} queries pooled ({summary['candidates_added']} new candidates) from "
          f"{', '.join(summary['retrievers'])}\n  {judged}\n  exported {export['judgments']} judgments of "
          f"{export['queries']} queries to {summary['eval_set_file']}\n  {use}", flush=True)
    return 0


def cmd_eval_set_export(s, args) -> int:
    from embtune_pipeline.lib.evaluation.judgments import agreement

    builder = _resource(args, "eval_sets")
    name = _eval_set_name(s, args)
    out = Path(args.out) if args.out else builder.eval_set_file(name)
    store = builder.judgments(name)
    try:
        counts = store.export(out)
        judged = store.judgments().rename(columns={"grade": "score"})
    finally:
        store.close()
    print(f"exported {counts['judgments']} judgments of {counts['queries']} queries by {counts['judges']} to {out}")
    a = agreement(judged)
    if a:
        print(f"people vs LLM: Cohen's kappa {a['kappa']:.3f} on {a['pairs']} pairs both judged "
              f"(agree on {a['agree']:.0%}; relevant: people {a['relevant_first']}, LLM {a['relevant_second']})")
    return 0


def cmd_label(s, args) -> int:
    from embtune_pipeline.labelling import serve
    from embtune_pipeline.lib.local_page import new_token, page_url

    builder = _resource(args, "eval_sets")
    name = _eval_set_name(s, args)
    store = builder.judgments(name)
    judge = args.judge if args.judge.startswith("human") else f"human:{args.judge}"
    token = new_token()
    print(f"labelling {name!r} as {judge}: {page_url(args.port, token)}\n"
          "(open this URL; the token in it is needed for every request. Ctrl-C stops; every grade is saved)",
          flush=True)
    try:
        serve(store, judge, builder.eval_set_file(name), args.port, token)
    finally:
        store.close()
    return 0


def _experiment_note(s, ui_url: str) -> str:
    """Where the settings' MLflow experiment opens as model training (once a run has made it)."""
    import mlflow

    from embtune_pipeline.lib.registry.tracking import experiment_url

    found = mlflow.MlflowClient(s.mlflow_tracking_uri).get_experiment_by_name(s.mlflow.experiment)
    if found is None:
        return f"MLflow: the experiment {s.mlflow.experiment!r} appears after the first `embtune run`"
    return f"{'experiment:':12} {experiment_url(ui_url, found.experiment_id)}"


def cmd_ui(s, args) -> int:
    from embtune_pipeline.lib.registry.tracking import is_remote
    from embtune_pipeline.runner import find_workspace
    from embtune_pipeline.uis import DAGSTER_PORT, dagster_ui, mlflow_ui, port_of, serve

    _instance()  # a fresh DAGSTER_HOME gets its dagster.yaml and workspace.yaml first
    uis, notes = [dagster_ui(find_workspace(args.workspace), args.dagster_port or DAGSTER_PORT)], []
    if is_remote(s.mlflow_tracking_uri):
        notes.append(f"MLflow: the tracking server {s.mlflow_tracking_uri} serves its own UI")
    else:
        ui = mlflow_ui(s.mlflow_tracking_uri, args.mlflow_port or port_of(s.mlflow.ui_url, 5000))
        uis.append(ui)
        notes.append(_experiment_note(s, ui.url))
    print(f"starting the UIs for DAGSTER_HOME={os.environ['DAGSTER_HOME']} and {s.mlflow_tracking_uri}", flush=True)
    return serve(uis, notes)


def parser() -> argparse.ArgumentParser:
    """Every command and argument, each with its one line of help."""
    ap = argparse.ArgumentParser(prog="embtune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="settings YAML (default: $EMBTUNE_CONFIG, else the demo)")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="register the corpus snapshot and re-tune on it")
    p.add_argument("--base-model", action="append", help="a base model partition key (default: all)")
    p.add_argument("--wait", action="store_true", help="when the run is queued: follow it to its end, and exit "
                   "non-zero if it failed (a run executed here always finishes before the command does)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every Dagster event of a run executed here "
                   "(default: the steps' progress lines and warnings, then a summary)")
    p.add_argument("--workspace", default=None, help="the workspace.yaml the daemon loads (default: "
                   "$EMBTUNE_WORKSPACE, else $DAGSTER_HOME/workspace.yaml, else ./workspace.yaml)")
    p.set_defaults(fn=cmd_run)
    sub.add_parser("snapshot", help="register the current corpus snapshot").set_defaults(fn=cmd_snapshot)
    sub.add_parser("snapshots", help="every registered snapshot: when, how many documents, what changed since the "
                   "one before").set_defaults(fn=cmd_snapshots)
    sub.add_parser("champion", help="show champion and challenger").set_defaults(fn=cmd_champion)
    p = sub.add_parser("promote", help="make VERSION the champion")
    p.add_argument("version", help="a registered version number (embtune champion shows the current ones)")
    p.set_defaults(fn=cmd_promote)
    sub.add_parser("rollback", help="move champion back one promotion").set_defaults(fn=cmd_rollback)
    p = sub.add_parser("bind-index", help="record which version an index was embedded with")
    p.add_argument("index", help="the vector index's name, as your serving code knows it")
    p.add_argument("--version", default=None, help="the registered version it was embedded with (default: the "
                   "champion)")
    p.add_argument("--note", default=None, help="free text kept with the binding (who, where, why)")
    p.set_defaults(fn=cmd_bind_index)
    sub.add_parser("indexes", help="list index bindings; exit 2 when one is stale").set_defaults(fn=cmd_indexes)
    indexes = sub.add_parser("index", help="vector indexes: build, search, list, roll back").add_subparsers(
        dest="action", required=True)
    p = indexes.add_parser("build", help="embed the latest snapshot into a new table of NAME, check, switch")
    p.add_argument("name", help="an index of the settings' `indexes`")
    p.add_argument("--version", default=None, help="the registered version (default: the champion)")
    p.add_argument("--snapshot", default=None, help="the corpus snapshot (default: the latest registered)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every Dagster event")
    p.set_defaults(fn=cmd_index_build)
    p = indexes.add_parser("search", help="the top hits of a query, encoded by the version NAME was built with")
    p.add_argument("name", help="an index of the settings' `indexes`")
    p.add_argument("query", help="the search text, as a user would type it")
    p.add_argument("-k", type=int, default=5, help="how many hits to print (default: 5)")
    p.set_defaults(fn=cmd_index_search)
    indexes.add_parser("list", help="each index's table and version; exit 2 when one is behind the champion"
                       ).set_defaults(fn=cmd_index_list)
    p = indexes.add_parser("rollback", help="move NAME back to the table it served before")
    p.add_argument("name", help="an index of the settings' `indexes`")
    p.set_defaults(fn=cmd_index_rollback)
    eval_sets = sub.add_parser("eval-set", help="eval sets from real queries").add_subparsers(dest="action",
                                                                                            required=True)
    p = eval_sets.add_parser("build", help="pool and judge a query log into an eval set")
    p.add_argument("--queries", default=None, help="a text file (a query a line) or a CSV/JSONL/Parquet file "
                   "(default: the settings' eval_set_builder.queries)")
    p.add_argument("--column", default=None, help="the queries' column in a CSV/JSONL/Parquet file (default: "
                   "eval_set_builder.column)")
    p.add_argument("--name", default=None, help="the eval set's name (default: the queries file's name)")
    p.add_argument("--judge", default=None, help="'human', 'smollm2' or a litellm model (default: the settings' "
                   "eval_set_builder.judge)")
    p.add_argument("--base-model", default=None, help="the base model's partition key (default: the first); its "
                   "newest tuned model, when on disk, is pooled from too")
    p.add_argument("--model", action="append", help="another model directory to pool from (repeatable)")
    p.set_defaults(fn=cmd_eval_set_build)
    p = eval_sets.add_parser("export", help="write the eval-set file; print people vs LLM agreement")
    p.add_argument("--name", default=None, help="the eval set (default: the only one under data_dir/eval_sets)")
    p.add_argument("--out", default=None, help="default: eval_set.jsonl in the eval set's folder")
    p.set_defaults(fn=cmd_eval_set_export)
    p = sub.add_parser("label", help="judge an eval set's pool in a page on 127.0.0.1")
    p.add_argument("--name", default=None, help="the eval set (default: the only one under data_dir/eval_sets)")
    p.add_argument("--judge", default="human", help="who you are, kept with each grade (human:<name>)")
    p.add_argument("--port", type=int, default=8765, help="the page's port on 127.0.0.1 (default: 8765)")
    p.set_defaults(fn=cmd_label)
    p = sub.add_parser("ui", help="start the Dagster UI (with its daemon) and the MLflow UI on 127.0.0.1")
    p.add_argument("--dagster-port", type=int, default=None, help="default: 3000")
    p.add_argument("--mlflow-port", type=int, default=None, help="default: the port of the settings' mlflow.ui_url "
                   "(5000), which run links point at")
    p.add_argument("--workspace", default=None, help="the workspace.yaml to load (default: $EMBTUNE_WORKSPACE, "
                   "else $DAGSTER_HOME/workspace.yaml, else ./workspace.yaml)")
    p.set_defaults(fn=cmd_ui)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    from mlflow.exceptions import MlflowException

    from embtune_pipeline.lib.errors import InputError
    from embtune_pipeline.lib.registry.versions import RegistryError
    from embtune_pipeline.lib.serving.tables import VectorIndexError
    from embtune_pipeline.settings import CONFIG_ENV, SettingsError, load_settings

    if not getattr(args, "verbose", False):  # Dagster's notes on its own beta APIs tell an operator nothing
        import warnings

        from dagster import BetaWarning, PreviewWarning

        warnings.filterwarnings("ignore", category=BetaWarning)
        warnings.filterwarnings("ignore", category=PreviewWarning)
    if args.config:  # the definitions this process builds, and the code servers it spawns, read the same file
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    try:
        return args.fn(load_settings(args.config), args)
    except (SettingsError, InputError, RegistryError, VectorIndexError, FileNotFoundError,
            MlflowException) as e:  # the message says what and where
        sys.exit(f"embtune: {e}")


if __name__ == "__main__":
    sys.exit(main())
