"""Uploading exports (dagster_project/uploads.py): the pipeline's readers and rules decide, the data folder
changes only for an upload a run would accept, and what it replaces is kept and can be put back."""

from __future__ import annotations

import gzip
import hashlib
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dagster_project import data_files, ingest, uploads
from dagster_project.contract import TRANSACTIONS, USERS
from tests.workspace import ROOT, folder_bytes

THRESHOLD = 50.0
T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def upload_of(path: Path, name: str | None = None) -> uploads.Upload:
    return uploads.Upload(name or path.name, path.read_bytes())


def more_users(workspace, extra: int = 3) -> uploads.Upload:
    """users1.csv with a few more customers: a good upload."""
    text = (workspace.data / "users1.csv").read_text()
    rows = "".join(
        f'"{9000 + i}","New Customer {i}","new{i}@example.com",30,"F","ES","2026-11-01"\n' for i in range(extra)
    )
    return uploads.Upload("users_new.csv", (text + rows).encode())


def test_a_good_upload_lands_the_old_files_are_kept_and_can_be_put_back(workspace):
    before = folder_bytes(workspace.data)
    upload = more_users(workspace)
    verdict = uploads.check([upload], workspace.data, THRESHOLD)
    assert verdict.accepted and not verdict.refusals
    (summary,) = verdict.files
    assert summary.table == "users" and summary.rows == 927 + 3 and summary.problem is None
    assert set(summary.columns) == set(USERS.columns) and summary.missing == () and summary.extra == ()
    assert verdict.replaces == {"users": ("users1.csv", "users2.csv")}
    assert verdict.unchanged == {"products": ("products.json",), "transactions": ("transactions.csv",)}
    assert verdict.report.records == {"users": 930, "products": 101, "transactions": 3001}
    assert verdict.report.gate_passed and 0 < verdict.report.quality_score <= 100
    assert folder_bytes(workspace.data) == before  # checking never touches the folder

    watched = data_files.scan(workspace.data)  # what the file sensor last saw
    verdict, done = uploads.accept([upload], workspace.data, THRESHOLD, now=T0)
    assert verdict.accepted and done.written == ("users_new.csv",)
    # The sensor sees the users files change, and nothing of the kept set.
    assert data_files.changed_files(watched, data_files.scan(workspace.data)) == [
        "users1.csv",
        "users2.csv",
        "users_new.csv",
    ]
    assert (workspace.data / "users_new.csv").read_bytes() == upload.data
    assert not (workspace.data / "users1.csv").exists() and not (workspace.data / "users2.csv").exists()
    kept = done.kept
    assert kept.name == "20261127T120000Z" and kept.path == workspace.data / ".replaced" / "20261127T120000Z"
    assert {n for n, _ in kept.files} == {"users1.csv", "users2.csv"} and kept.tables == ("users",)
    for name in ("users1.csv", "users2.csv"):
        assert hashlib.sha256((kept.path / name).read_bytes()).hexdigest() == before[name]

    # The pipeline's readers and the file sensor see only the new file, never the kept ones.
    assert list(data_files.scan(workspace.data)) == ["users_new.csv", "products.json", "transactions.csv"]
    assert [p.name for p in ingest.discover(workspace.data, USERS)] == ["users_new.csv"]
    assert len(ingest.read_entity(workspace.data, USERS)) == 930
    assert [f.name for f in uploads.export_files(workspace.data)] == [
        "users_new.csv",
        "products.json",
        "transactions.csv",
    ]

    assert [k.name for k in uploads.kept_sets(workspace.data)] == ["20261127T120000Z"]
    undone = uploads.restore(workspace.data, "20261127T120000Z", now=T0 + timedelta(minutes=5))
    current = {k: v for k, v in folder_bytes(workspace.data).items() if not k.startswith(".replaced")}
    assert current == before  # the folder holds exactly the files it held before the upload
    assert [k.name for k in uploads.kept_sets(workspace.data)] == ["20261127T120500Z"]  # the upload, kept in turn
    assert {n for n, _ in undone.kept.files} == {"users_new.csv"}
    with pytest.raises(ValueError, match="No kept set"):
        uploads.restore(workspace.data, "../../etc")


def test_gzip_and_several_files_of_one_table(workspace):
    users1, users2 = (workspace.data / "users1.csv").read_bytes(), (workspace.data / "users2.csv").read_bytes()
    verdict = uploads.check(
        [uploads.Upload("users_a.csv.gz", gzip.compress(users1)), uploads.Upload("users_b.csv", users2)],
        workspace.data,
        THRESHOLD,
    )
    assert verdict.accepted, verdict.refusals
    assert {f.name: f.rows for f in verdict.files} == {"users_a.csv.gz": 927, "users_b.csv": 456}
    assert verdict.report.records["users"] == 1383


BAD = {
    # name -> (how the upload is made from the workspace, words the refusal must contain)
    "unknown name": (lambda ws: uploads.Upload("export.csv", b"user_id\n1\n"), ["export.csv", "Rename it"]),
    "a folder in the name": (lambda ws: uploads.Upload("../users.csv", b"user_id\n1\n"), ["plain name"]),
    "required column missing": (
        lambda ws: uploads.Upload(
            "transactions.csv",
            (ws.data / "transactions.csv").read_text().replace('"timestamp"', '"when"').encode(),
        ),
        ["transactions.csv", "timestamp"],
    ),
    "a spreadsheet renamed": (
        lambda ws: uploads.Upload("users.csv", b"PK\x03\x04" + b"\x00" * 30 + b"[Content_Types].xml" + b"\x00" * 64),
        ["users.csv", "Excel"],
    ),
    "broken CSV": (
        lambda ws: uploads.Upload("users.csv", b'user_id,name\n1,"unclosed\n2,b\n'),
        ["users.csv", "quoted field"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_file_that_breaks_the_contract_is_refused_and_the_folder_is_untouched(workspace, case):
    make, words = BAD[case]
    before = folder_bytes(workspace.data)
    verdict, done = uploads.accept([make(workspace)], workspace.data, THRESHOLD, now=T0)
    assert done is None and not verdict.accepted
    text = " ".join(verdict.refusals)
    assert all(w in text for w in words), text
    assert str(workspace.data) not in text and "recomart-upload-" not in text  # file names, not server folders
    assert folder_bytes(workspace.data) == before
    assert not (workspace.data / ".replaced").exists()


def test_data_below_the_quality_gate_is_refused_with_the_rule_and_example_rows(workspace):
    """Transactions of customers nobody knows: readable, but most rows break `user_known`."""
    frame = pd.read_csv(workspace.data / "transactions.csv", dtype=str)
    frame["user_id"] = "999999"
    text = frame.to_csv(index=False)
    before = folder_bytes(workspace.data)
    verdict, done = uploads.accept([uploads.Upload("transactions.csv", text.encode())], workspace.data, THRESHOLD)
    assert done is None and not verdict.accepted and not verdict.refusals
    report = verdict.report
    assert report.gate_passed is False and report.quality_score < THRESHOLD
    failing = {c.name: c for c in report.failed()}
    unknown = failing["user_known"]
    assert unknown.failing_rows == 3001 and unknown.total_rows == 3001
    example = unknown.examples[0]
    assert example["source_file"] == "transactions.csv" and example["source_row"] == "1"
    assert example["user_id"] == "999999"
    assert folder_bytes(workspace.data) == before


def test_the_size_limit(workspace, monkeypatch):
    assert uploads.max_upload_mb({}) == uploads.DEFAULT_MAX_UPLOAD_MB == 200
    assert uploads.max_upload_mb({"RECOMART_MAX_UPLOAD_MB": "5"}) == 5
    for wrong in ("0", "-3", "lots", "1.5"):
        with pytest.raises(ValueError, match="RECOMART_MAX_UPLOAD_MB"):
            uploads.max_upload_mb({"RECOMART_MAX_UPLOAD_MB": wrong})
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == uploads.DEFAULT_MAX_UPLOAD_MB  # Streamlit refuses at the same size

    before = folder_bytes(workspace.data)
    upload = more_users(workspace)
    verdict, done = uploads.accept([upload], workspace.data, THRESHOLD, max_bytes=len(upload.data) - 1)
    assert done is None and "over the upload limit" in verdict.refusals[0] and "users_new.csv" in verdict.refusals[0]
    assert folder_bytes(workspace.data) == before


def test_an_upload_needs_the_other_tables_and_staging_is_cleaned(workspace, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # staging folders appear here
    (workspace.data / "products.json").unlink()
    verdict = uploads.check([more_users(workspace)], workspace.data, THRESHOLD)
    assert not verdict.accepted and verdict.report is None
    assert "Upload the products export too" in verdict.refusals[0]
    assert not list(tmp_path.glob("recomart-upload-*"))


def test_only_the_newest_kept_sets_stay(workspace):
    upload = more_users(workspace)
    for minute in range(uploads.KEEP_SETS + 2):
        _, done = uploads.accept([upload], workspace.data, THRESHOLD, now=T0 + timedelta(minutes=minute))
        assert done is not None
    names = [k.name for k in uploads.kept_sets(workspace.data)]
    assert len(names) == uploads.KEEP_SETS and names[0] == "20261127T120600Z"
    assert len(list((workspace.data / ".replaced").iterdir())) == uploads.KEEP_SETS


def test_rows_are_counted_cheaply(workspace):
    counts = {f.name: uploads.count_rows(f.path) for f in uploads.export_files(workspace.data)}
    assert counts == {"users1.csv": 927, "users2.csv": 456, "products.json": 101, "transactions.csv": 3001}
    packed = workspace.data / "transactions.csv.gz"
    packed.write_bytes(gzip.compress((workspace.data / "transactions.csv").read_bytes()))
    assert uploads.count_rows(packed) == 3001
    assert TRANSACTIONS.name == uploads.table_for("transactions.csv.gz").name


def test_two_uploads_at_once_take_turns(workspace):
    from concurrent.futures import ThreadPoolExecutor

    base = (workspace.data / "users1.csv").read_bytes() + (workspace.data / "users2.csv").read_bytes().split(b"\n", 1)[
        1
    ]
    first, second = uploads.Upload("users_a.csv", base), uploads.Upload("users_b.csv", base)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda u: uploads.accept([u], workspace.data, THRESHOLD), (first, second)))
    assert all(done is not None for _, done in results)
    users = [p.name for p in ingest.discover(workspace.data, USERS)]
    assert len(users) == 1 and users[0] in ("users_a.csv", "users_b.csv")  # one upload, whole, then the other
    kept = sorted(n for k in uploads.kept_sets(workspace.data) for n, _ in k.files)
    assert kept == sorted(["users1.csv", "users2.csv", "users_a.csv" if users[0] == "users_b.csv" else "users_b.csv"])
