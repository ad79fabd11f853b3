"""The nightly refresh: new data only (the files that arrived or changed since the last refresh)."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs import new_data
from dagster_project.defs.automation import default_status
from dagster_project.defs.jobs import complete_pipeline_job
from dagster_project.defs.resources import RecoMartPaths


@dg.schedule(
    name="daily_pipeline",
    job=complete_pipeline_job,
    cron_schedule="0 2 * * *",
    default_status=default_status(),
    description="Refresh the data and the model every night at 02:00, reading only new or changed purchase files.",
)
def daily_pipeline(context: dg.ScheduleEvaluationContext, paths: RecoMartPaths) -> dg.RunRequest:
    """Add the new files' partitions, then request the refresh over them (customers and products are read again
    only when their exports changed)."""
    found = new_data.plan(context.instance, paths)
    new_data.apply(context.instance, found)
    return new_data.run_request(found, run_key=None, tags={"recomart/trigger": "daily_pipeline"})
