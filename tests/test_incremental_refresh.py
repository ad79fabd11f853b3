"""A refresh of new data only, end to end: the Refresh page on a real webserver and daemon reads just the
new purchase file, keeps the others byte for byte, brings the features, the model and the buyers' lists
up to date with it (the same tables a full count gives), re-reads a corrected older file and trains again,
drops a file that left the folder, and counts a line repeated across files once."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from dagster_project import customer_lists, features, transaction_files, transaction_store
from dagster_project.recommender import load_model
from streamlit_app.dagster_api import Connection, DagsterAPI
from tests.apptest import open_page, texts
from tests.servers import dagster_server, wait_for_run, wait_until
from tests.workspace import LiveDagster, Workspace, assert_same_lists, make_workspace

FILES = ["transactions_2026-08-01.csv", "transactions_2026-09-01.csv", "transactions_2026-10-01.csv"]
NEW_DAY = "transactions_2026-11-01.csv"
START, END = transaction_files.RANGE_START_TAG, transaction_files.RANGE_END_TAG


def split_by_month(ws: Workspace) -> pd.DataFrame:
    """The sample's one purchase export as three monthly files (lines before August go in the first)."""
    source = ws.data / "transactions.csv"
    lines = pd.read_csv(source, dtype=str, keep_default_na=False)
    source.unlink()
    month = pd.to_datetime(lines["timestamp"], errors="coerce").dt.month.fillna(0)
    for name, rows in zip(FILES, (month <= 8, month == 9, month >= 10), strict=True):
        lines[rows].to_csv(ws.data / name, index=False)
    return lines


def stored_files(ws: Workspace, key: str) -> dict[str, tuple[int, str]]:
    """Each stored file of one purchase file's partition: its modification time and content hash."""
    from dagster_project.fileio import sha256_of

    paths = [
        transaction_store.raw_path(ws.storage, key),
        transaction_store.hashes_path(ws.storage, key),
        transaction_store.result_path(ws.storage, key),
        transaction_store.prepared_path(ws.storage, key),
    ]
    return {str(p.relative_to(ws.storage)): (p.stat().st_mtime_ns, sha256_of(p)) for p in paths}


def transaction_store_tables(ws: Workspace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's prepared customers and products, as stored."""
    return pd.read_parquet(ws.storage / "prepared" / "users.parquet"), pd.read_parquet(
        ws.storage / "prepared" / "products.parquet"
    )


def refresh_from_page(live: LiveDagster, kind: str | None) -> str:
    """Start a refresh on the Refresh page (`kind` None: the page's default); returns the run id."""
    at = open_page("refresh")
    if kind is not None:
        at.radio(key="refresh_kind").set_value(kind).run()
    before = {r.run_id for r in live.api.runs(limit=50)}
    at.button(key="start_refresh").click().run()
    assert not at.exception, at.exception
    [run_id] = wait_until(lambda: [r.run_id for r in live.api.runs(limit=50) if r.run_id not in before], 60, "a run")
    assert wait_for_run(live.api, run_id) == "SUCCESS", (live.server.home / "daemon.log").read_text()[-3000:]
    assert "This refresh reads" in texts(at)
    return run_id


def model_metadata(api: DagsterAPI, run_id: str) -> dict:
    [found] = [m["metadata"] for m in api.materializations("collaborative_filtering_model") if m["run_id"] == run_id]
    return found


def partition_metadata(api: DagsterAPI, run_id: str) -> list[dict]:
    return [m["metadata"] for m in api.materializations("raw_transactions", limit=100) if m["run_id"] == run_id]


@pytest.mark.webserver
def test_new_data_only_reads_just_the_new_file_and_updates_the_model(tmp_path, sample_source, monkeypatch):
    ws = make_workspace(tmp_path, sample_source)
    lines = split_by_month(ws)
    with dagster_server(tmp_path / "dagster_home", ws.env()) as server:
        live = LiveDagster(server, ws, Connection(port=server.port), DagsterAPI(Connection(port=server.port)))
        for key, value in live.app_env().items():
            monkeypatch.setenv(key, value)

        # No model yet: the page offers everything first, and that reads every file.
        at = open_page("refresh")
        assert at.radio(key="refresh_kind").value == transaction_files.EVERYTHING
        assert "New data only" in str(at.radio(key="refresh_kind").proto.options)
        first = refresh_from_page(live, None)
        tags = live.api.run(first).tags
        assert (tags[START], tags[END]) == (FILES[0], FILES[-1]) and tags["recomart/refresh"] == "everything"
        assert live.api.partition_keys() == FILES
        before = {key: stored_files(ws, key) for key in FILES}
        trained = load_model(ws.model_file)
        per_file = {m["source_file"]: m for m in partition_metadata(live.api, first)}
        assert set(per_file) == set(FILES) and all(0 < m["quality_score"] <= 100 for m in per_file.values())
        assert sum(m["records"] for m in per_file.values()) == len(lines)

        # A new day arrives, holding one line already in the first file: new data only is now the default.
        repeated = lines[pd.to_datetime(lines["timestamp"], errors="coerce").dt.month <= 8].iloc[[0]]
        fresh = lines.iloc[:5].assign(
            transaction_id=[f"N{i}" for i in range(5)], timestamp="2026-11-01 12:00:00", quantity="1"
        )
        pd.concat([fresh, repeated]).to_csv(ws.data / NEW_DAY, index=False)
        at = open_page("refresh")
        assert at.radio(key="refresh_kind").value == transaction_files.NEW_DATA
        shown = at.dataframe[0].value.set_index("file")["this refresh"]
        assert shown[NEW_DAY] == "read" and shown["users1.csv"] == "read again if changed"
        assert all(shown[f] == "kept: unchanged since the last refresh" for f in FILES)
        second = refresh_from_page(live, None)
        tags = live.api.run(second).tags
        assert (tags[START], tags[END]) == (NEW_DAY, NEW_DAY) and tags["recomart/refresh"] == "new_data"
        assert {key: stored_files(ws, key) for key in FILES} == before  # the older files: not read, not written
        [new_meta] = partition_metadata(live.api, second)
        assert new_meta["source_file"] == NEW_DAY and new_meta["records"] == 6
        result = transaction_store.read_json(transaction_store.result_path(ws.storage, NEW_DAY))["report"]
        repeats = next(c for c in result["checks"] if c["name"] == "transaction_not_duplicated")
        assert repeats["failing_rows"] == 1  # the line copied from the first file, once
        all_prepared = transaction_store.load_prepared(ws.storage, [*FILES, NEW_DAY])
        model = load_model(ws.model_file)
        card = model.card
        assert card.run_id == second and card.trained_at == trained.card.trained_at  # updated, not trained again
        assert card.update.latest_files == [NEW_DAY] and card.update.transactions == 5
        assert card.transactions + card.update.transactions == len(all_prepared)
        assert model_metadata(live.api, second)["refresh"] == "update"
        # the same interaction table and customer lists as counting and building everything again
        interactions = pd.read_parquet(ws.storage / "features" / "interactions.parquet")
        pd.testing.assert_frame_equal(interactions, features.interaction_table(all_prepared), check_exact=False)
        whole = features.build(all_prepared, *(transaction_store_tables(ws)))
        for name, table in zip(("user_features", "item_features"), whole, strict=False):
            table.to_parquet(tmp_path / f"{name}.parquet", index=False)  # stored and read back, as the run's
            stored = pd.read_parquet(ws.storage / "features" / f"{name}.parquet")
            pd.testing.assert_frame_equal(stored, pd.read_parquet(tmp_path / f"{name}.parquet"), check_exact=False)
            assert stored.attrs["covers"] == interactions.attrs["covers"]  # all three count the same files
        [counted] = [m["metadata"] for m in live.api.materializations("interaction_matrix") if m["run_id"] == second]
        assert counted["refresh"] == "update" and counted["users"] == interactions["user_id"].nunique()
        customer_lists.write_for_model(model, tmp_path / "whole")
        assert customer_lists.layer_path(ws.storage).is_file()  # the buyers' lists made again, beside the base
        assert_same_lists(ws.storage, tmp_path / "whole")
        report = live.api.latest_materializations(["validation_report"])["validation_report"]["metadata"]
        assert report["purchase_files"] == 4 and report["purchase_records"] == len(lines) + 6
        assert NEW_DAY in report["quality_by_file"]

        # A corrected older file is read again, from it to the last file; the first file stays as it was.
        middle = ws.data / FILES[1]
        middle.write_text(middle.read_text().replace(",1,", ",2,", 1))
        third = refresh_from_page(live, transaction_files.NEW_DATA)
        tags = live.api.run(third).tags
        assert (tags[START], tags[END]) == (FILES[1], NEW_DAY)
        assert stored_files(ws, FILES[0]) == before[FILES[0]]
        assert stored_files(ws, FILES[1]) != before[FILES[1]]
        assert load_model(ws.model_file).card.update is None  # an older file changed: trained again in full
        assert model_metadata(live.api, third)["refresh"] == "training"

        # A file that left the data folder loses its partition and its stored tables; the model forgets it.
        # The file named after it was compared with its lines (repeated lines): it is read again, alone.
        kept = {key: stored_files(ws, key) for key in (FILES[0], FILES[1])}
        gone = ws.data / FILES[2]
        gone_rows = len(pd.read_csv(gone))
        gone.unlink()
        fourth = refresh_from_page(live, transaction_files.NEW_DATA)
        tags = live.api.run(fourth).tags
        assert (tags[START], tags[END]) == (NEW_DAY, NEW_DAY)
        assert {key: stored_files(ws, key) for key in (FILES[0], FILES[1])} == kept
        assert live.api.partition_keys() == [FILES[0], FILES[1], NEW_DAY]
        assert not transaction_store.raw_path(ws.storage, FILES[2]).exists()
        assert not transaction_store.prepared_path(ws.storage, FILES[2]).exists()
        report = live.api.latest_materializations(["validation_report"])["validation_report"]["metadata"]
        assert report["purchase_records"] == len(lines) + 6 - gone_rows
        assert load_model(ws.model_file).card.run_id == fourth

        # A backfill from the Dagster UI over two files: one run reads both, in one step.
        before = {key: stored_files(ws, key) for key in (FILES[0], FILES[1], NEW_DAY)}
        backfill = live.api.query(
            BACKFILL_MUTATION,
            {"params": {"assetSelection": [{"path": ["raw_transactions"]}], "partitionNames": [FILES[1], NEW_DAY]}},
        )["launchPartitionBackfill"]
        assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
        tag = {"key": "dagster/backfill", "value": backfill["backfillId"]}
        [run] = wait_until(lambda: live.api.query(BACKFILL_RUNS, {"tags": [tag]})["runsOrError"]["results"], 120, "run")
        assert wait_for_run(live.api, run["runId"]) == "SUCCESS"
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert (tags[START], tags[END]) == (FILES[1], NEW_DAY)
        assert [s.key for s in live.api.run(run["runId"]).steps] == ["raw_transactions"]
        assert stored_files(ws, FILES[0]) == before[FILES[0]]
        raw_new = str(transaction_store.raw_path(ws.storage, NEW_DAY).relative_to(ws.storage))
        assert stored_files(ws, NEW_DAY)[raw_new] != before[NEW_DAY][raw_new]  # read again by the backfill
        assert os.environ["DAGSTER_PORT"] == str(server.port)


# What the Dagster UI sends for a backfill of chosen partitions, and the runs it started.
BACKFILL_MUTATION = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""
BACKFILL_RUNS = """
query BackfillRuns($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId tags { key value } } } }
}
"""
