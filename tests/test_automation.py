"""The nightly schedule and the data-folder sensor, evaluated with Dagster's test contexts."""

import os
import time

import dagster as dg

from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.schedules import daily_pipeline
from dagster_project.defs.sensors import data_files_sensor


def tick(data_dir, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources={"paths": RecoMartPaths(data_dir=str(data_dir))})
    result = data_files_sensor.evaluate_tick(context)
    return result, context.cursor


def test_schedule_runs_the_complete_pipeline_at_two():
    assert daily_pipeline.cron_schedule == "0 2 * * *"
    assert daily_pipeline.job_name == "complete_pipeline_job"
    context = dg.build_schedule_context(scheduled_execution_time=None)
    requests = daily_pipeline.evaluate_tick(context).run_requests
    assert len(requests) == 1


def test_sensor_fires_once_for_new_files_and_not_again(workspace):
    result, cursor = tick(workspace.data, None)
    assert result.run_requests == [] and cursor  # the first look only records the folder

    result, cursor = tick(workspace.data, cursor)
    assert result.run_requests == []  # nothing changed

    (workspace.data / "transactions_2026_11.csv").write_text(
        "user_id,product_id,timestamp\n1001,P0001,2026-11-01 10:00:00\n"
    )
    result, cursor = tick(workspace.data, cursor)
    assert len(result.run_requests) == 1
    assert "transactions_2026_11.csv" in result.run_requests[0].tags["recomart/changed"]

    result, cursor = tick(workspace.data, cursor)
    assert result.run_requests == []


def test_sensor_run_key_follows_content_not_mtime(workspace):
    _, cursor = tick(workspace.data, None)
    path = workspace.data / "users2.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Ava", b"Eva", 1))
    result, cursor = tick(workspace.data, cursor)
    changed_key = result.run_requests[0].run_key
    # Touching a file without changing it starts nothing.
    later = time.time() + 5
    os.utime(path, (later, later))
    result, cursor = tick(workspace.data, cursor)
    assert result.run_requests == []
    # Going back to the original content gives a different key than the change did.
    path.write_bytes(original)
    result, _ = tick(workspace.data, cursor)
    assert result.run_requests[0].run_key != changed_key


def test_automation_is_off_in_tests():
    assert daily_pipeline.default_status == dg.DefaultScheduleStatus.STOPPED
    assert data_files_sensor.default_status == dg.DefaultSensorStatus.STOPPED
