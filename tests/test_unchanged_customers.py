"""A refresh of new data only does not read the customers' and products' exports again when they are byte for
byte those the stored tables came from: the earlier run's tables, rule results and figures are recorded as this
run's (same files, not rewritten), the checks still report, and the model is still brought up to date. A byte
changed, a run that stopped half-way, a stored table that changed, other settings, or a refresh of everything:
read and prepared again."""

from __future__ import annotations

import os

import dagster as dg
import pandas as pd
import pytest

from dagster_project import transaction_store
from dagster_project.defs import rule_results
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.validation import ValidationReport
from tests.pipeline_runs import refresh_new_data, run_complete

WHOLE = ("raw_users", "raw_products", "prepared_users", "prepared_products")


def new_day(ws, day: int) -> None:
    """A small purchase file after the history, of known customers and products."""
    lines = pd.read_csv(ws.data / "transactions.csv", dtype=str, keep_default_na=False).iloc[:4]
    lines = lines.assign(transaction_id=[f"D{day}-{i}" for i in range(4)], timestamp=f"2026-11-{day:02d} 12:00:00")
    lines.to_csv(ws.data / f"transactions_2026-11-{day:02d}.csv", index=False)


def recorded(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """Each whole table's materialization in the run: its metadata as plain values."""
    found = {}
    for name in WHOLE:
        [event] = [
            e
            for e in instance.get_records_for_run(run_id).records
            if e.event_log_entry.dagster_event
            and e.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
            and e.event_log_entry.dagster_event.asset_key == dg.AssetKey(name)
        ]
        metadata = event.event_log_entry.dagster_event.materialization.metadata
        found[name] = {k: getattr(v, "value", v) for k, v in metadata.items()}
    return found


def checks_in(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id).records
    return {
        f"{e.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string()}:"
        f"{e.event_log_entry.dagster_event.event_specific_data.check_name}"
        for e in records
        if e.event_log_entry.dagster_event
        and e.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def logged(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(r.event_log_entry.user_message for r in instance.get_records_for_run(run_id).records)


def mtimes(meta: dict[str, dict]) -> dict[str, int]:
    from pathlib import Path

    return {name: Path(str(m["path"])).stat().st_mtime_ns for name, m in meta.items()}


def assert_read_again(instance, run_id: str, tables: tuple[str, ...] = WHOLE) -> None:
    meta = recorded(instance, run_id)
    assert all("reused_from_run" not in meta[name] for name in tables), meta
    assert "exports in" not in logged(instance, run_id)  # the log line of raw tables used again


@pytest.fixture
def first(workspace, instance):
    result = run_complete(workspace, instance)
    assert result.success
    return result.run_id


def test_unchanged_customers_and_products_are_not_read_again(workspace, instance, first):
    ws = workspace
    before = recorded(instance, first)
    written = mtimes(before)
    new_day(ws, 1)
    second = refresh_new_data(ws, instance).run_id
    after = recorded(instance, second)
    for name in WHOLE:  # the same stored file and figures, recorded as this run's, the file not written again
        assert after[name]["reused_from_run"] == first
        for key in ("path", "sha256", "size_bytes", "records", "dagster/row_count"):
            assert after[name][key] == before[name][key], (name, key)
        assert after[name]["dagster/column_schema"] == before[name]["dagster/column_schema"]
    for name in ("prepared_users", "prepared_products"):  # the quality figures of preparation, as measured then
        for key in ("input_records", "rows_dropped", "dropped_by_reason"):
            assert after[name][key] == before[name][key], (name, key)
    assert after["raw_users"]["source_files"] == before["raw_users"]["source_files"]
    assert mtimes(after) == written
    text = logged(instance, second)
    assert "byte for byte those run" in text and "nothing prepared twice" in text
    # the checks still report on this run, with the stored rule results; the report and the model carry on
    whole_checks = {c for c in checks_in(instance, first) if c.split(":")[0] in ("raw_users", "raw_products")}
    assert whole_checks and whole_checks <= checks_in(instance, second)
    assert transaction_store.read_json(ws.storage / rule_results.RELATIVE_PATH)["run_id"] == second
    model = [
        e.event_log_entry.dagster_event.materialization.metadata["refresh"].value
        for e in instance.get_records_for_run(second).records
        if e.event_log_entry.dagster_event
        and e.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_log_entry.dagster_event.asset_key == dg.AssetKey("collaborative_filtering_model")
    ]
    assert model == ["update"]  # the customers and products are the same: the model is updated, not retrained

    # a third night: reused again, still naming the run that read the files
    new_day(ws, 2)
    third = refresh_new_data(ws, instance).run_id
    assert all(m["reused_from_run"] == first for m in recorded(instance, third).values())


def test_one_byte_changed_reads_them_again(workspace, instance, first):
    ws = workspace
    users = sorted(ws.data.glob("users*.csv"))[0]
    text = users.read_text()
    at = text.index("\n") + 1  # first character of the first customer line
    stat = users.stat()
    users.write_text(text[:at] + ("8" if text[at] != "8" else "9") + text[at + 1 :])  # same size, one byte other
    os.utime(users, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time, as `cp -p` or an unzip leave it
    new_day(ws, 1)
    second = refresh_new_data(ws, instance).run_id
    assert_read_again(instance, second)
    assert recorded(instance, second)["raw_users"]["sha256"] != recorded(instance, first)["raw_users"]["sha256"]


def test_a_run_stopped_half_way_or_a_changed_stored_table_reads_them_again(workspace, instance, first):
    ws = workspace
    # a run that stopped after storing its rule results, before recording its tables
    report = ValidationReport.from_dict(transaction_store.read_json(ws.storage / rule_results.RELATIVE_PATH)["report"])
    rule_results.store(RecoMartPaths(storage_dir=str(ws.storage)), report, "a-run-that-stopped", {})
    new_day(ws, 1)
    second = refresh_new_data(ws, instance).run_id
    assert_read_again(instance, second, ("raw_users", "raw_products"))  # (prepared: made from the same bytes)

    # a stored table that is no longer the file its run recorded
    path = recorded(instance, second)["prepared_products"]["path"]
    pd.read_parquet(path).iloc[:-1].to_parquet(path, index=False)
    new_day(ws, 2)
    third = refresh_new_data(ws, instance).run_id
    meta = recorded(instance, third)
    assert meta["raw_users"]["reused_from_run"] == second  # the raw tables are fine: used again
    assert "reused_from_run" not in meta["prepared_products"] and "reused_from_run" not in meta["prepared_users"]


def test_other_settings_or_a_refresh_of_everything_read_them_again(workspace, instance, first):
    ws = workspace
    config = ws.run_config()
    config["ops"] = {"prepared_data": {"config": {"non_product_pattern": "(?i)gift card"}}}
    new_day(ws, 1)
    second = refresh_new_data(ws, instance, config).run_id
    meta = recorded(instance, second)
    assert meta["raw_users"]["reused_from_run"] == first  # the exports and their checks are those read before
    assert "reused_from_run" not in meta["prepared_products"]  # prepared again under the other setting

    everything = run_complete(ws, instance)
    assert everything.success
    assert_read_again(instance, everything.run_id)


def test_a_sign_up_date_later_than_tomorrow_prepares_the_customers_again(workspace, instance):
    """A date left out for being in the future may be kept on a later day: such a preparation is not used again."""
    ws = workspace
    users = sorted(ws.data.glob("users*.csv"))[0]
    later = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    lines = users.read_text().splitlines(keepends=True)
    lines[1] = lines[1].rsplit(",", 1)[0] + f',"{later}"\n'  # the first customer signs up in a month
    users.write_text("".join(lines))
    first = run_complete(ws, instance).run_id
    assert recorded(instance, first)["prepared_users"]["signup_dates_after_tomorrow"] == 1
    new_day(ws, 1)
    second = refresh_new_data(ws, instance).run_id
    meta = recorded(instance, second)
    assert meta["raw_users"]["reused_from_run"] == first  # the same bytes: read once
    assert "reused_from_run" not in meta["prepared_users"] and "reused_from_run" not in meta["prepared_products"]
    assert "later than tomorrow" in logged(instance, second)
