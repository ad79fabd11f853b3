"""The nightly schedule and the data-folder sensor, evaluated with Dagster's test contexts."""

import os
import time

import dagster as dg

from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.schedules import daily_pipeline
from dagster_project.defs.sensors import data_files_sensor


def tick(instance, data_dir, cursor):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"paths": RecoMartPaths(data_dir=str(data_dir))}
    )
    result = data_files_sensor.evaluate_tick(context)
    return result, context.cursor


def settle(instance, data_dir, cursor):
    """A change is seen on one look and acted on at the next (a copy in progress never starts a run)."""
    result, cursor = tick(instance, data_dir, cursor)
    assert result.run_requests == [] and "changed" in result.skip_message
    return tick(instance, data_dir, cursor)


def test_schedule_runs_the_complete_pipeline_at_two(workspace, instance):
    assert daily_pipeline.cron_schedule == "0 2 * * *"
    assert daily_pipeline.job_name == "complete_pipeline_job"
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=None,
        resources={"paths": RecoMartPaths(**workspace.run_config()["resources"]["paths"]["config"])},
    )
    requests = daily_pipeline.evaluate_tick(context).run_requests
    assert len(requests) == 1


def test_sensor_fires_once_for_new_files_and_not_again(workspace, instance):
    result, cursor = tick(instance, workspace.data, None)
    assert result.run_requests == [] and cursor  # the first look only records the folder

    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == []  # nothing changed

    (workspace.data / "transactions_2026_11.csv").write_text(
        "user_id,product_id,timestamp\n1001,P0001,2026-11-01 10:00:00\n"
    )
    result, cursor = settle(instance, workspace.data, cursor)
    assert len(result.run_requests) == 1
    assert "transactions_2026_11.csv" in result.run_requests[0].tags["recomart/changed"]

    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == []


def test_sensor_run_key_follows_content_not_mtime(workspace, instance):
    _, cursor = tick(instance, workspace.data, None)
    path = workspace.data / "users2.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Ava", b"Eva", 1))
    result, cursor = settle(instance, workspace.data, cursor)
    changed_key = result.run_requests[0].run_key
    # Touching a file without changing it starts nothing.
    later = time.time() + 5
    os.utime(path, (later, later))
    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == []
    # Going back to the original content gives a different key than the change did.
    path.write_bytes(original)
    result, _ = settle(instance, workspace.data, cursor)
    assert result.run_requests[0].run_key != changed_key


def test_sensor_leaves_files_a_refresh_read_and_waits_for_one_in_progress(workspace, instance):
    """A refresh started by hand on changed files is the only run for them (issue: two runs, two models)."""
    from dagster_project.definitions import defs

    _, cursor = tick(instance, workspace.data, None)
    path = workspace.data / "users2.csv"
    path.write_bytes(path.read_bytes().replace(b"Ava", b"Eva", 1))
    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == []
    # A queued refresh: the sensor waits for it and keeps the change in mind.
    queued = instance.create_run_for_job(
        defs.resolve_job_def("complete_pipeline_job"), status=dg.DagsterRunStatus.NOT_STARTED
    )
    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == [] and "queued or running" in result.skip_message
    instance.report_run_canceled(queued)
    # The refresh by hand reads the files (and records their fingerprint on its run); the sensor then starts nothing.
    manual = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=workspace.run_config(), instance=instance
    )
    assert manual.success
    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == [] and "already read these files" in result.skip_message
    result, cursor = tick(instance, workspace.data, cursor)
    assert result.run_requests == [] and result.skip_message == "No input file changed."

    # Going back to the files before (a replaced export restored) is a change the refresh did not read.
    path.write_bytes(path.read_bytes().replace(b"Eva", b"Ava", 1))
    result, cursor = settle(instance, workspace.data, cursor)
    (request,) = result.run_requests
    assert request.run_key.endswith(":after:" + manual.dagster_run.tags["recomart/input_fingerprint"])


def test_automation_is_off_in_tests():
    assert daily_pipeline.default_status == dg.DefaultScheduleStatus.STOPPED
    assert data_files_sensor.default_status == dg.DefaultSensorStatus.STOPPED
