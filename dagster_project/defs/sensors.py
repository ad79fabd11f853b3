"""A refresh whenever the input files in the data folder change, and only one per change.

A change waits one more look before it starts a run: a copy still in progress never starts one, and a
refresh started by hand right after the change is found. While any refresh is queued or running the
sensor waits for it; afterwards, files the newest complete refresh already read (its run carries their
fingerprint, INPUT_FINGERPRINT_TAG) start nothing. The run key names the change (these files after the
ones the newest refresh read), so Dagster never requests one change twice.

The run is a refresh of new data only (`new_data`): the new transactions files become partitions in the
same tick, and the run reads from the first new or changed file to the last; files that left the folder
lose their partition.
"""

from __future__ import annotations

import json

import dagster as dg

from dagster_project import data_files
from dagster_project.defs import new_data
from dagster_project.defs.automation import INPUT_FINGERPRINT_TAG, SENSOR_INTERVAL_SECONDS, default_status
from dagster_project.defs.jobs import complete_pipeline_job, ingestion_job
from dagster_project.defs.resources import RecoMartPaths

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _read_cursor(cursor: str | None) -> tuple[data_files.FileState | None, list[str] | None]:
    """(files seen last time, the changed files waiting for their second look); older cursors hold files only."""
    if not cursor:
        return None, None
    value = json.loads(cursor)
    if "files" in value and isinstance(value["files"], dict):
        return value["files"], value.get("pending")
    return value, None


def _runs_in_progress(instance: dg.DagsterInstance) -> list[str]:
    jobs = [complete_pipeline_job.name, ingestion_job.name]
    return [r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=ACTIVE), limit=20) if r.job_name in jobs]


def last_consumed_fingerprint(instance: dg.DagsterInstance) -> str | None:
    """The input fingerprint of the newest complete refresh that read the data folder (failed ones too)."""
    for run in instance.get_runs(dg.RunsFilter(job_name=complete_pipeline_job.name), limit=25):
        if INPUT_FINGERPRINT_TAG in run.tags:
            return run.tags[INPUT_FINGERPRINT_TAG]
    return None


@dg.sensor(
    job=complete_pipeline_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus(default_status().value),
    description="Refresh the data and the model when export files in the data folder are added or changed.",
)
def data_files_sensor(context: dg.SensorEvaluationContext, paths: RecoMartPaths):
    """Request the complete pipeline once per change of the input files (see the module's docstring)."""
    previous, pending = _read_cursor(context.cursor)
    state = data_files.scan(paths.data, previous)
    fingerprint = data_files.fingerprint(state)

    def remember(waiting: list[str] | None) -> None:
        context.update_cursor(json.dumps({"files": state, "pending": waiting}))

    if previous is None:
        remember(None)
        return dg.SkipReason(f"Recorded {len(state)} input files in {paths.data}; watching for changes.")
    changed = data_files.changed_files(previous, state)
    if changed:
        remember(sorted(set(changed) | set(pending or [])) if state else None)
        return dg.SkipReason(f"Input files changed ({', '.join(changed)[:200]}); refreshing at the next check.")
    if pending is None:
        remember(None)
        return dg.SkipReason("No input file changed.")
    if active := _runs_in_progress(context.instance):
        remember(pending)
        return dg.SkipReason(f"A refresh is queued or running ({active[0]}); checking again after it.")
    remember(None)
    consumed = last_consumed_fingerprint(context.instance)
    if consumed == fingerprint:
        return dg.SkipReason("The newest refresh already read these files.")
    found = new_data.plan(context.instance, paths, state)
    request = new_data.run_request(
        found,
        # One key per change (these files after those): Dagster never requests it twice, yet going back to
        # earlier files (a restored export) is a new change and is refreshed.
        run_key=f"{fingerprint}:after:{consumed or 'none'}",
        tags={"recomart/trigger": "data_files_sensor", "recomart/changed": ",".join(pending)[:200]},
    )
    return dg.SensorResult(run_requests=[request], dynamic_partitions_requests=new_data.partition_requests(found))
