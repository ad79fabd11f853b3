"""Transactions files as partitions, without Dagster: what a refresh reads, repeated lines across files,
and per-file rule results that add up to the merged table's."""

import pandas as pd
import pytest

from dagster_project import ingest, repeated_lines, transaction_files, transaction_store, validation
from dagster_project.contract import TRANSACTIONS
from dagster_project.transaction_files import EVERYTHING, FileNameError, check_key, plan
from tests.workspace import small_frames

DAYS = [f"transactions_2026-10-{d:02d}.csv" for d in (28, 29, 30)]


def test_first_refresh_adds_every_file_in_name_order_and_reads_them_all():
    files = {name: f"sha-{name}" for name in reversed(DAYS)}
    first = plan(files, stored={}, keys=[])
    assert first.add == DAYS and first.delete == [] and first.keys == DAYS
    assert (first.start, first.end) == (DAYS[0], DAYS[-1])
    assert first.tags() == {
        "dagster/asset_partition_range_start": DAYS[0],
        "dagster/asset_partition_range_end": DAYS[-1],
    }
    assert first.describe() == f"3 purchase files ({DAYS[0]} .. {DAYS[-1]})"


def test_new_daily_file_is_the_only_one_read():
    stored = {name: f"sha-{name}" for name in DAYS}
    new_day = "transactions_2026-10-31.csv"
    files = {**stored, new_day: "sha-new"}
    step = plan(files, stored, keys=DAYS)
    assert step.add == [new_day] and step.changed == [new_day]
    assert (step.start, step.end) == (new_day, new_day)
    assert transaction_files.keys_in_range(step.keys, step.start, step.end) == [new_day]


def test_nothing_new_reads_no_file_and_everything_reads_all():
    stored = {name: f"sha-{name}" for name in DAYS}
    idle = plan(stored, stored, keys=DAYS)
    assert not idle.reads_files and idle.tags() == {} and idle.describe() == "no purchase file: none is new or changed"
    everything = plan(stored, stored, keys=DAYS, kind=EVERYTHING)
    assert (everything.start, everything.end) == (DAYS[0], DAYS[-1])


def test_a_changed_older_file_widens_the_range_to_the_end():
    stored = {name: f"sha-{name}" for name in DAYS}
    files = {**stored, DAYS[1]: "corrected"}
    step = plan(files, stored, keys=DAYS)
    assert step.changed == [DAYS[1]] and (step.start, step.end) == (DAYS[1], DAYS[2])


def test_a_failed_read_is_read_again_and_a_file_that_left_is_deleted():
    stored = {DAYS[0]: f"sha-{DAYS[0]}", DAYS[1]: f"sha-{DAYS[1]}"}  # DAYS[2] never finished preparing
    step = plan({name: f"sha-{name}" for name in DAYS}, stored, keys=DAYS)
    assert (step.start, step.end) == (DAYS[2], DAYS[2])
    # the files named after a deleted one were judged against its lines (repeated lines): read again
    gone = plan({DAYS[1]: f"sha-{DAYS[1]}", DAYS[2]: f"sha-{DAYS[2]}"}, stored, keys=DAYS)
    assert gone.delete == [DAYS[0]] and gone.keys == DAYS[1:]
    assert (gone.start, gone.end) == (DAYS[1], DAYS[2])
    last_gone = plan({DAYS[0]: f"sha-{DAYS[0]}", DAYS[1]: f"sha-{DAYS[1]}"}, stored, keys=DAYS)
    assert last_gone.delete == [DAYS[2]] and not last_gone.reads_files


def test_a_new_file_named_before_the_others_comes_last_in_the_keys_and_they_are_read_again():
    stored = {name: f"sha-{name}" for name in DAYS}
    files = {**stored, "transactions_archive.csv": "x", "transactions_2026-01-01.csv": "y"}
    step = plan(files, stored, keys=DAYS)
    assert step.keys == [*DAYS, "transactions_2026-01-01.csv", "transactions_archive.csv"]
    assert (step.start, step.end) == (DAYS[0], "transactions_archive.csv")


def test_a_corrected_file_reads_every_file_named_after_it_whatever_order_they_arrived_in():
    """Keys are in the order files arrived: the range covers every file named after the corrected one."""
    keys = [DAYS[1], DAYS[2], DAYS[0]]  # DAYS[0] arrived last though it is named first
    stored = {name: f"sha-{name}" for name in DAYS}
    step = plan({**stored, DAYS[0]: "corrected"}, stored, keys=keys)
    assert (step.start, step.end) == (DAYS[1], DAYS[0])
    assert set(transaction_files.keys_in_range(step.keys, step.start, step.end)) == set(DAYS)


def test_stored_files_count_only_when_consistent_and_judged_against_todays_customers(tmp_path):
    """A run that failed after reading a file leaves its raw parts newer than its prepared table; a change
    to the customer or product exports makes every stored file out of date."""
    from dagster_project.fileio import write_json

    def store(key: str, raw_sha: str, prepared_sha: str, reference: str = "ref-1") -> None:
        write_json({"sha256": raw_sha, "reference": reference}, transaction_store.raw_manifest(tmp_path, key))
        transaction_store.prepared_path(tmp_path, key).parent.mkdir(parents=True, exist_ok=True)
        transaction_store.prepared_path(tmp_path, key).write_bytes(b"")
        write_json({"sha256": prepared_sha}, transaction_store.prepared_manifest(tmp_path, key))

    store(DAYS[0], "a", "a")
    store(DAYS[1], "b-failed", "b")  # read again by a run that then failed
    assert transaction_store.prepared_state(tmp_path, "ref-1") == {DAYS[0]: "a"}
    assert transaction_store.prepared_state(tmp_path, "ref-2") == {}
    scan = {"users.csv": [0, 0, "u1"], "products.json": [0, 0, "p1"], DAYS[0]: [0, 0, "a"]}
    assert transaction_files.reference(scan) == transaction_files.reference({**scan, DAYS[0]: [0, 0, "b"]})
    assert transaction_files.reference(scan) != transaction_files.reference({**scan, "users.csv": [0, 0, "u2"]})


@pytest.mark.parametrize("key", ["..", ".", "../x", "a/b", "/abs", "a\\b", ""])
def test_a_key_that_is_not_a_file_name_names_nothing_in_storage(tmp_path, key):
    with pytest.raises(ValueError):
        transaction_store.prepared_path(tmp_path, key)


@pytest.mark.parametrize("name", ["transactions...csv", "transactions,1.csv", "transactions[1].csv", " x.csv"])
def test_a_file_name_that_cannot_be_a_key_is_named_with_the_fix(name):
    with pytest.raises(FileNameError) as info:
        plan({name: "sha"}, {}, [])
    assert str(info.value).startswith(f"{name}: this transactions file's name") and "Rename it" in str(info.value)
    assert check_key("transactions_2026-10-31.csv") == "transactions_2026-10-31.csv"


def test_current_files_keeps_only_transactions_exports():
    state = {"users.csv": [1, 2, "a"], "transactions.csv": [1, 2, "b"], "transactions_1.csv.gz": [1, 2, "c"]}
    assert transaction_files.current_files(state) == {"transactions.csv": "b", "transactions_1.csv.gz": "c"}


def _tx(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "product_id", "timestamp"], dtype="string")


def test_a_line_repeated_in_a_later_file_counts_once_as_repeated():
    a = _tx([("1", "A", "2026-01-01"), ("2", "B", "2026-01-02"), ("2", "B", "2026-01-02")])
    b = _tx([("2", "B", "2026-01-02"), ("3", "C", "2026-01-03")])
    # b has an extra column that is empty on the repeated line: still the same line, as in the merged table
    b["quantity"] = pd.array([None, "2"], dtype="string")
    merged = pd.concat([a, b], ignore_index=True)
    from dagster_project.contract import duplicated_rows

    expected = duplicated_rows(merged)
    first = repeated_lines.repeated(a, repeated_lines.row_hashes(a), None)
    second = repeated_lines.repeated(b, repeated_lines.row_hashes(b), repeated_lines.row_hashes(a))
    assert list(first) + list(second) == list(expected) == [False, False, True, True, False]
    # a value moved to another column is another line
    c = _tx([("B", "2", "2026-01-02")])
    assert not repeated_lines.repeated(c, repeated_lines.row_hashes(c), repeated_lines.row_hashes(a)).any()


def test_per_file_results_add_up_to_the_merged_tables(sample_source, tmp_path):
    """Split the sample's purchases into three files: the combined report equals the one on the merged table."""
    whole = small_frames()
    tx = whole.transactions
    parts_tx = [tx.iloc[:2], tx.iloc[2:4], tx.iloc[4:]]  # the last line repeats the first
    merged = validation.validate(whole)
    base = validation.validate(validation.Frames(whole.users, whole.products, pd.DataFrame()), ("users", "products"))
    parts, earlier = [], None
    for part in parts_tx:
        data = part.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN], errors="ignore")
        hashes = repeated_lines.row_hashes(data)
        frames = validation.Frames(whole.users, whole.products, part, earlier_rows=earlier, row_hashes=hashes)
        parts.append(validation.validate(frames, ("transactions",)))
        earlier = hashes if earlier is None else pd.concat([earlier, hashes], ignore_index=True)
    combined = validation.combine([base, *parts])
    assert combined.to_dict() == merged.to_dict()


def test_prepared_partitions_load_back_in_file_then_time_order(tmp_path):
    from dagster_project.fileio import write_parquet

    def part(times, ids):
        return pd.DataFrame({"timestamp": pd.to_datetime(times, utc=True), "user_id": ids})

    write_parquet(part(["2026-01-02", "2026-01-03"], ["b1", "b2"]), transaction_store.prepared_path(tmp_path, "b.csv"))
    write_parquet(part(["2026-01-01", "2026-01-02"], ["a1", "a2"]), transaction_store.prepared_path(tmp_path, "a.csv"))
    loaded = transaction_store.load_prepared(tmp_path, ["b.csv", "a.csv"])
    assert loaded["user_id"].tolist() == ["a1", "a2", "b1", "b2"]  # equal times: the earlier file's line first
    assert transaction_store.missing_prepared(tmp_path, ["a.csv", "c.csv"]) == ["c.csv"]
    transaction_store.remove(tmp_path, "a.csv")
    assert transaction_store.missing_prepared(tmp_path, ["a.csv"]) == ["a.csv"]


def test_the_sample_reads_the_same_as_one_file_or_as_daily_files(sample_source, tmp_path):
    """One export split by day gives the same repeated lines and counts as the single file."""
    whole = ingest.read_file(sample_source / "transactions.csv", TRANSACTIONS)
    day = pd.to_datetime(whole["timestamp"], errors="coerce", utc=True, format="mixed").dt.strftime("%Y-%m")
    data = whole.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN])
    expected = repeated_lines.repeated(data, repeated_lines.row_hashes(data), None)
    found, earlier = pd.Series(False, index=whole.index), None
    for _, rows in data.groupby(day.fillna("none"), sort=True):
        hashes = repeated_lines.row_hashes(rows)
        found.loc[rows.index] = repeated_lines.repeated(rows, hashes, earlier)
        earlier = hashes if earlier is None else pd.concat([earlier, hashes], ignore_index=True)
    # the same number of repeated lines (which copy is "the repeat" follows the order of the files)
    assert int(found.sum()) == int(expected.sum())


def test_earlier_lines_are_found_whatever_the_order_files_are_added_in():
    a = _tx([("1", "A", "t1"), ("2", "B", "t2"), ("2", "B", "t2")])
    b = _tx([("3", "C", "t3"), ("1", "A", "t1")])
    lines = repeated_lines.EarlierLines()
    lines.add(repeated_lines.row_hashes(a))
    assert lines.contains(repeated_lines.row_hashes(b)).tolist() == [False, True]
    lines.add(repeated_lines.row_hashes(b))
    probe = _tx([("1", "A", "t1"), ("3", "C", "t3"), ("4", "D", "t4"), ("2", "B", "t9")])
    assert lines.contains(repeated_lines.row_hashes(probe)).tolist() == [True, True, False, False]
    # two kept lines sharing a first hash are told apart by the second
    shared = pd.DataFrame({"h1": [5, 5], "h2": [1, 2]}, dtype="uint64")
    lines.add(shared)
    probe = pd.DataFrame({"h1": [5, 5, 5], "h2": [2, 1, 3]}, dtype="uint64")
    assert lines.contains(probe).tolist() == [True, True, False]


def test_line_hashes_of_a_column_read_in_blocks_equal_those_of_one_block():
    """Large files come out of the reader in several Arrow chunks per column."""
    import pyarrow as pa

    def column(*chunks: list) -> pd.Series:
        return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks, type=pa.large_string())))

    frame = pd.DataFrame(
        {
            "x": column(["a", "b"], ["a", None, "a"]),  # few values: hashed once each
            "y": ["1", "2", "1", None, "1"],
            "id": column(["T1", "T2", "T3"], [], ["T4", "T1"]),  # mostly distinct: hashed chunk by chunk
        }
    )
    whole = frame.astype(object).astype("string")
    pd.testing.assert_frame_equal(repeated_lines.row_hashes(frame), repeated_lines.row_hashes(whole))
    assert repeated_lines.row_hashes(frame)["h1"].iloc[0] == repeated_lines.row_hashes(frame)["h1"].iloc[4]
    assert repeated_lines.row_hashes(frame)["h1"].nunique() == 4


def test_a_value_hashes_the_same_in_any_file_whatever_path_hashes_it():
    """Values are hashed from their bytes: row by row (mostly distinct columns) or once per distinct value,
    in a short or a long value's way, the same text always gives the same hashes, and missing gives 0."""
    values = ["", "a", "a\x00", "é", "x" * 64, "x" * 65, "2026-10-27 21:50:06", None]
    distinct = pd.Series(values, dtype="string")
    repeated = pd.Series(values * 3 + ["q"] * 100, dtype="string")  # few distinct values: encoded first
    for key, (one, other) in enumerate(
        zip(repeated_lines._value_hashes(distinct), repeated_lines._value_hashes(repeated), strict=True)
    ):
        assert (one == other[: len(values)]).all(), key
        assert len(set(one[:-1].tolist())) == len(values) - 1 and one[-1] == 0 and (one[:-1] != 0).all()
