"""The nightly refresh."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.automation import default_status
from dagster_project.defs.jobs import complete_pipeline_job

daily_pipeline = dg.ScheduleDefinition(
    name="daily_pipeline",
    job=complete_pipeline_job,
    cron_schedule="0 2 * * *",
    default_status=default_status(),
    description="Refresh the data and the model every night at 02:00.",
)
