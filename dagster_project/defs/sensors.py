"""A refresh whenever the input files in the data folder change."""

import json

import dagster as dg

from dagster_project import data_files
from dagster_project.defs.automation import default_status
from dagster_project.defs.jobs import complete_pipeline_job
from dagster_project.defs.resources import RecoMartPaths


@dg.sensor(
    job=complete_pipeline_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus(default_status().value),
)
def data_files_sensor(context: dg.SensorEvaluationContext, paths: RecoMartPaths):
    """Request the complete pipeline when files matching the input patterns are added or changed.

    The first evaluation only records the folder as it is (the files already there were the last
    refresh's input); the run key is the content fingerprint, so the same files never run twice.
    """
    previous = json.loads(context.cursor) if context.cursor else None
    state = data_files.scan(paths.data, previous)
    context.update_cursor(json.dumps(state))
    if previous is None:
        return dg.SkipReason(f"Recorded {len(state)} input files in {paths.data}; watching for changes.")
    changed = data_files.changed_files(previous, state)
    if not changed or not state:
        return dg.SkipReason("No input file changed.")
    return dg.RunRequest(
        run_key=data_files.fingerprint(state),
        tags={"recomart/trigger": "data_files_sensor", "recomart/changed": ",".join(changed)[:200]},
    )
