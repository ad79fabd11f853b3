"""The sensor and the schedule ask for new data only: partitions for new files, a run over their range."""

import dagster as dg

from dagster_project import transaction_files
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.schedules import daily_pipeline
from dagster_project.defs.sensors import data_files_sensor
from tests.pipeline_runs import run_complete
from tests.workspace import Workspace

START, END = transaction_files.RANGE_START_TAG, transaction_files.RANGE_END_TAG
NEW_DAY = "transactions_2026-11-01.csv"


def paths(ws: Workspace) -> dict:
    return {"paths": RecoMartPaths(**ws.run_config()["resources"]["paths"]["config"])}


def sensor_tick(instance, ws, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=paths(ws))
    return data_files_sensor.evaluate_tick(context), context.cursor


def test_sensor_adds_the_new_files_partition_and_requests_only_its_range(workspace, instance):
    assert run_complete(workspace, instance).success  # everything read once: one partition per file
    assert instance.get_dynamic_partitions("transaction_files") == ["transactions.csv"]
    _, cursor = sensor_tick(instance, workspace, None)
    (workspace.data / NEW_DAY).write_text("user_id,product_id,timestamp\n1001,P0001,2026-11-01 10:00:00\n")
    _, cursor = sensor_tick(instance, workspace, cursor)  # seen once; acted on at the next look
    result, cursor = sensor_tick(instance, workspace, cursor)
    [request] = result.run_requests
    assert (request.tags[START], request.tags[END]) == (NEW_DAY, NEW_DAY)
    assert request.tags["recomart/refresh"] == "new_data"
    [add] = result.dynamic_partitions_requests
    assert isinstance(add, dg.AddDynamicPartitionsRequest) and list(add.partition_keys) == [NEW_DAY]


def test_sensor_drops_a_gone_file_and_reads_every_file_again_when_customers_changed(workspace, instance):
    """Purchases are judged against the customers and products (known customer, list prices): after a
    change to those exports no stored purchase file is up to date, so new data only reads them all."""
    (workspace.data / NEW_DAY).write_text("user_id,product_id,timestamp\n1001,P0001,2026-11-01 10:00:00\n")
    assert run_complete(workspace, instance).success
    _, cursor = sensor_tick(instance, workspace, None)
    (workspace.data / NEW_DAY).unlink()
    users = workspace.data / "users2.csv"
    users.write_bytes(users.read_bytes().replace(b"Ava", b"Eva", 1))
    _, cursor = sensor_tick(instance, workspace, cursor)
    result, _ = sensor_tick(instance, workspace, cursor)
    [request] = result.run_requests
    assert (request.tags[START], request.tags[END]) == ("transactions.csv", "transactions.csv")
    assert request.asset_selection is None  # the whole job
    [delete] = result.dynamic_partitions_requests
    assert isinstance(delete, dg.DeleteDynamicPartitionsRequest) and list(delete.partition_keys) == [NEW_DAY]


def test_sensor_reads_no_purchases_when_only_a_gone_file_named_last_changed(workspace, instance):
    (workspace.data / NEW_DAY).write_text("user_id,product_id,timestamp\n1001,P0001,2026-11-01 10:00:00\n")
    assert run_complete(workspace, instance).success
    _, cursor = sensor_tick(instance, workspace, None)
    (workspace.data / NEW_DAY).unlink()
    _, cursor = sensor_tick(instance, workspace, cursor)
    result, _ = sensor_tick(instance, workspace, cursor)
    [request] = result.run_requests
    assert START not in request.tags  # no purchase file to read: customers and products, then the model
    selected = {k.to_user_string() for k in request.asset_selection}
    assert "raw_users" in selected and "collaborative_filtering_model" in selected
    assert not selected & {"raw_transactions", "prepared_transactions"}


def test_schedule_adds_partitions_itself_and_reads_from_the_first_new_file(workspace, instance):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=None, resources=paths(workspace))
    [request] = daily_pipeline.evaluate_tick(context).run_requests
    assert (request.tags[START], request.tags[END]) == ("transactions.csv", "transactions.csv")
    assert instance.get_dynamic_partitions("transaction_files") == ["transactions.csv"]


def test_the_assets_read_whole_are_the_jobs_assets_less_the_partitioned_ones():
    from dagster_project.definitions import defs

    for job, whole in transaction_files.WHOLE_DATA_ASSETS.items():
        keys = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.executable_asset_keys}
        assert set(whole) == keys - set(transaction_files.PARTITIONED_ASSETS)


def test_a_purchase_file_whose_name_cannot_be_a_partition_fails_naming_it(workspace, instance):
    (workspace.data / "transactions.csv").rename(workspace.data / "transactions,1.csv")
    result = run_complete(workspace, instance)
    assert not result.success
    [message] = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert "transactions,1.csv: this transactions file's name holds ','" in message and "Rename it" in message
    assert instance.get_dynamic_partitions("transaction_files") == []


def test_a_partition_added_by_hand_that_is_no_file_name_fails_naming_it(workspace, instance):
    """Keys become file names under storage: one such as '../escape' (the Dagster UI accepts it) is refused."""
    from dagster_project.definitions import defs

    assert run_complete(workspace, instance).success
    instance.add_dynamic_partitions("transaction_files", ["../escape"])
    result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=workspace.run_config(),
        instance=instance,
        tags=transaction_files.range_tags("../escape", "../escape"),
        asset_selection=[dg.AssetKey("prepared_transactions")],
        raise_on_error=False,
    )
    assert not result.success
    [message] = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert "../escape: this refresh was planned to read this purchase file" in message
    assert "holds no file of that name" in message and "Put the file back" in message
    assert not (workspace.storage.parent / "escape.json").exists()
    assert not any(p.name.startswith("escape") for p in workspace.storage.parent.rglob("escape*"))
