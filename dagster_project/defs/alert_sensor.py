"""Tell people when a refresh fails: a run-failure sensor that hands the facts to `alerts` (pure, no Dagster)."""

from __future__ import annotations

import dagster as dg

from dagster_project import alerts
from dagster_project.defs.automation import FAILURE_SENSOR_INTERVAL_SECONDS

ALERT_CHANNELS = "alert_channels"


def failure_facts(context: dg.RunFailureSensorContext) -> tuple[str | None, str | None]:
    """(failed step, error text): a failed blocking check's own message first (the quality gate says
    what broke and what to do; its step error only says "1 blocking asset check failed")."""
    run_id = context.dagster_run.run_id
    for record in context.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.blocking:
            return record.step_key, evaluation.description
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        message = error.message.removeprefix("dagster._core.definitions.events.Failure: ") if error else None
        return event.step_key, message
    return None, context.failure_event.message if context.failure_event else None


@dg.run_failure_sensor(
    name="run_failure_alerts",
    description="Send a message (chat webhook, e-mail) when a refresh fails.",
    minimum_interval_seconds=FAILURE_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    # What this process (the one that evaluates the sensor) has configured, for the app's "alerts are on/off".
    metadata={ALERT_CHANNELS: ", ".join(alerts.channels_configured()) or "none"},
)
def run_failure_alerts(context: dg.RunFailureSensorContext):
    if not alerts.channels_configured():
        return dg.SkipReason("No alert channel is configured (RECOMART_ALERT_WEBHOOK, RECOMART_ALERT_SMTP_HOST).")
    run = context.dagster_run
    step, error = failure_facts(context)
    alert = alerts.FailureAlert(run.job_name, step, error, alerts.run_url(run.run_id))
    outcome = alerts.send(alert)
    failed = {name: why for name, why in outcome.items() if why != "sent"}
    for name, why in failed.items():
        context.log.warning(f"The alert for run {run.run_id} could not be sent by {name}: {why}")
    return None
