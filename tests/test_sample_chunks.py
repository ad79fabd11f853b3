"""The generator at any size: chunked transactions equal one chunk, and daily files split the same rows."""

from fnmatch import fnmatch

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dagster_project import ingest, validation
from dagster_project.contract import TRANSACTIONS
from dagster_project.sample_data import CHUNK_ROWS, DefectRates, generate, make_products, make_users
from dagster_project.sample_stream import plan_next_day, plan_transactions, stream_transactions

SIZE = {"users": 500, "products": 40, "transactions": 5000, "seed": 3}


def _rows(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    frame = table.to_pandas() if isinstance(table, pa.Table) else table
    return frame.astype(str).sort_values("transaction_id").reset_index(drop=True)


def _read(paths) -> pd.DataFrame:
    return _rows(pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]))


def test_chunked_transactions_equal_one_chunk(tmp_path):
    rng, defects = np.random.default_rng(3), DefectRates()
    products = make_products(40, rng, defects)
    users = pd.concat(make_users(500, rng, defects)).drop_duplicates("user_id")
    plan = plan_transactions(5000, users, products, rng, defects)
    assert len(plan.chunks(5000)) == 1 and len(plan.chunks(300)) > 10

    one = [chunk for chunk in stream_transactions(plan, 5000)]
    many = [chunk for chunk in stream_transactions(plan, 300)]
    assert all(len(table) < 300 + 100 for table, _ in many)  # about the chunk size, whole customers only
    whole = _rows(one[0][0])
    assert len(whole) == 5000 and whole["transaction_id"].is_unique
    assert _rows(pa.concat_tables([table for table, _ in many])).equals(whole)
    # a row's day goes with the row, whatever its chunk
    days = {tid: d for table, d in many for tid, d in zip(table["transaction_id"].to_pylist(), d)}
    assert days == dict(zip(one[0][0]["transaction_id"].to_pylist(), one[0][1]))

    # generate() writes those rows when the size is above one chunk
    generate(tmp_path, **SIZE, chunk_rows=300)
    written = _read([tmp_path / "transactions.csv"])
    assert written.equals(whole.replace({"nan": ""}))


@pytest.mark.parametrize("chunk_rows", [700, CHUNK_ROWS], ids=["chunked", "one-piece"])
def test_daily_files_split_the_same_rows_by_day(tmp_path, chunk_rows):
    single = generate(tmp_path / "single", **SIZE, chunk_rows=chunk_rows)
    daily = generate(tmp_path / "daily", **SIZE, chunk_rows=chunk_rows, daily_files=True)

    names = [n for n in daily if n.startswith("transactions")]
    assert len(names) == 365 and "transactions.csv" not in daily
    assert names[0] == "transactions_2025-11-01.csv" and names[-1] == "transactions_2026-10-31.csv"
    assert all(fnmatch(n, TRANSACTIONS.pattern) for n in names)
    assert sum(daily[n] for n in names) == single["transactions.csv"] == 5000

    files = sorted((tmp_path / "daily").glob("transactions_*.csv"))
    assert _read(files).equals(_read([tmp_path / "single/transactions.csv"]))
    bad_times = 0
    for path in files:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        day = path.stem.removeprefix("transactions_")
        times = pd.to_datetime(rows["timestamp"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
        assert (times.dropna().dt.strftime("%Y-%m-%d") == day).all(), path.name
        bad_times += int(times.isna().sum())
    assert bad_times == round(5000 * DefectRates().bad_timestamp)  # the defects stay in their day's file

    # the pipeline reads the daily files as it reads the single one
    assert len(ingest.read_transactions(tmp_path / "daily")) == len(ingest.read_transactions(tmp_path / "single"))


def test_chunked_data_has_the_same_shape_and_defects(tmp_path):
    reports, repeats = {}, {}
    for name, chunk_rows in (("one-piece", CHUNK_ROWS), ("chunked", 700)):
        folder = tmp_path / name
        generate(folder, 1500, 100, 20000, seed=5, chunk_rows=chunk_rows)
        tx = ingest.read_transactions(folder)
        frames = validation.Frames(ingest.read_users(folder), ingest.read_products(folder), tx)
        reports[name] = validation.validate(frames)
        pairs = tx.groupby(["user_id", "product_id"]).size()
        repeats[name] = (pairs > 1).mean()
    one, chunked = reports["one-piece"], reports["chunked"]
    assert {c.name for c in chunked.failed()} == {c.name for c in one.failed()}
    assert abs(chunked.quality_score - one.quality_score) < 1.0
    assert abs(repeats["chunked"] - repeats["one-piece"]) < 0.05 and repeats["chunked"] > 0.1


def test_one_folder_holds_one_layout(tmp_path):
    generate(tmp_path, **SIZE)
    with pytest.raises(FileExistsError, match="transactions.csv: the folder already holds"):
        generate(tmp_path, **SIZE, daily_files=True)
    generate(tmp_path / "daily", **SIZE, daily_files=True)
    with pytest.raises(FileExistsError, match="transactions_2025-11-01.csv"):
        generate(tmp_path / "daily", **SIZE)


@pytest.mark.parametrize("chunk_rows", [700, CHUNK_ROWS], ids=["chunked", "one-piece"])
def test_next_day_is_one_more_daily_file_of_the_same_shop(tmp_path, chunk_rows):
    generate(tmp_path, **SIZE, chunk_rows=chunk_rows, daily_files=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    added = generate(tmp_path, **SIZE, chunk_rows=chunk_rows, next_day=True)

    assert list(added) == ["transactions_2026-11-01.csv"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in before} == before
    day = pd.read_csv(tmp_path / "transactions_2026-11-01.csv", dtype=str, keep_default_na=False)
    assert len(day) == added["transactions_2026-11-01.csv"] == round(5000 / 365)
    times = pd.to_datetime(day["timestamp"], errors="coerce", format="%Y-%m-%d %H:%M:%S").dropna()
    assert len(times) and (times.dt.strftime("%Y-%m-%d") == "2026-11-01").all()
    # ids continue after the dataset's last, and the buyers are the dataset's customers
    assert day["transaction_id"].min() == "T0005001" and day["transaction_id"].is_unique
    users = ingest.read_users(tmp_path)["user_id"]
    assert day["user_id"].isin(users).mean() > 0.9
    assert len(ingest.read_transactions(tmp_path)) == 5000 + len(day)


def test_next_day_keeps_the_shops_tastes():
    rng_base, rng_day, defects = np.random.default_rng(3), np.random.default_rng(3), DefectRates()
    frames = []
    for rng in (rng_base, rng_day):
        products = make_products(40, rng, defects)
        frames.append((pd.concat(make_users(500, rng, defects)).drop_duplicates("user_id"), products))
    base = plan_transactions(5000, *frames[0], rng_base, defects)
    day = plan_next_day(5000, 14, False, *frames[1], rng_day, defects)
    assert (day.segment == base.segment).all() and np.array_equal(day.item_cdf, base.item_cdf)
    assert day.n == 14 and day.first_number == 5000 and day.key != base.key
