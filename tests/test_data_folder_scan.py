"""The data folder is hashed once per run: `raw_data` scans it (hashing only files whose size or modification
time changed since the last run's scan) and `raw_transactions` takes each file's sha256 and the customers'
and products' reference from that scan. What is stored must still name the bytes that were read."""

from __future__ import annotations

import json

import dagster as dg

from dagster_project import data_files, transaction_files, transaction_store
from dagster_project.definitions import defs
from dagster_project.defs.assets.ingestion import SCAN_FILE
from dagster_project.fileio import sha256_of
from tests.pipeline_runs import run_complete


def stored_manifests(ws) -> dict[str, dict]:
    keys = sorted(p.name for p in ws.data.glob("transactions*.csv"))
    return {k: transaction_store.read_json(transaction_store.raw_manifest(ws.storage, k)) for k in keys}


def assert_up_to_date(ws, run_id: str) -> None:
    """Every stored file names its file's bytes and today's customers and products: nothing left to read."""
    scanned = data_files.scan(ws.data)
    reference = transaction_files.reference(scanned)
    for key, manifest in stored_manifests(ws).items():
        assert manifest["run_id"] == run_id
        assert (manifest["sha256"], manifest["reference"]) == (sha256_of(ws.data / key), reference), key
    stored = transaction_store.prepared_state(ws.storage, reference)
    assert not transaction_files.plan(transaction_files.current_files(scanned), stored, sorted(stored)).reads_files


def test_files_are_hashed_once_per_run_and_a_changed_file_is_hashed_again(workspace, instance):
    ws = workspace
    first = run_complete(ws, instance)
    assert first.success
    assert_up_to_date(ws, first.run_id)
    saved = json.loads((ws.storage / SCAN_FILE).read_text())
    assert saved["run_id"] == first.run_id and set(saved["files"]) == set(data_files.scan(ws.data))

    # a purchase file and a customers file change: the next run hashes them again, not the saved scan's sha256
    purchases = ws.data / "transactions.csv"
    purchases.write_text(purchases.read_text() + purchases.read_text().splitlines()[1] + "\n")  # a repeated line
    users = sorted(ws.data.glob("users*.csv"))[0]
    users.write_text(users.read_text() + users.read_text().splitlines()[1].replace(",", ",9", 1) + "\n")
    second = run_complete(ws, instance)
    assert second.success
    assert_up_to_date(ws, second.run_id)


def test_purchases_read_without_the_customers_scan_are_judged_against_the_files_hashed_then(workspace, instance):
    """Only the purchases refreshed (the customers and products as stored): no scan of that run to take."""
    ws = workspace
    assert run_complete(ws, instance).success
    (ws.storage / SCAN_FILE).unlink()
    result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=ws.run_config(), instance=instance, asset_selection=[dg.AssetKey("raw_transactions")]
    )
    assert result.success
    assert_up_to_date(ws, result.run_id)


def test_a_saved_scan_is_read_only_as_far_as_it_is_well_formed(tmp_path):
    good = [1, 2, "ab"]
    saved = {"files": {"a.csv": good, "b.csv": [1, "2", "ab"], "c.csv": [1, 2], "d.csv": "x"}}
    assert data_files.state_of(saved) == {"a.csv": good}
    assert data_files.state_of(["files"]) == data_files.state_of(None) == data_files.state_of({"files": 3}) == {}
    path = tmp_path / "x.csv"
    path.write_text("a\n")
    entry = [*data_files.stat_of(path), "sha"]
    assert data_files.unchanged(path, entry)
    path.write_text("ab\n")
    assert not data_files.unchanged(path, entry)
    assert not data_files.unchanged(tmp_path / "gone.csv", entry) and not data_files.unchanged(path, None)
