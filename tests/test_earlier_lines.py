"""Lines of earlier files, looked up by their two hashes: the same verdicts however the history is kept
(scanned as stored or sorted into the index), including lines that share a first hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project import repeated_lines


def _file(rng: np.random.Generator, rows: int, spread: int) -> pd.DataFrame:
    """Random line hashes from few values: many lines share a first hash, many repeat exactly."""
    return pd.DataFrame(
        {"h1": rng.integers(0, spread, rows).astype(np.uint64), "h2": rng.integers(0, 3, rows).astype(np.uint64)}
    )


def _stored(hashes: pd.DataFrame, path: Path, rng: np.random.Generator) -> Path:
    """The hashes as a stored file, in row groups of a few lines (a long history's file has many)."""
    pq.write_table(pa.Table.from_pandas(hashes, preserve_index=False), path, row_group_size=int(rng.integers(1, 9)))
    return path


@pytest.mark.parametrize("seed", range(6))
def test_verdicts_equal_a_set_of_the_earlier_lines_whatever_the_order_of_adds_and_lookups(seed, tmp_path, monkeypatch):
    monkeypatch.setattr(repeated_lines, "SCAN_ROWS", 5)  # stored files scanned in blocks across row groups
    rng = np.random.default_rng(seed)
    lines, kept = repeated_lines.EarlierLines(), set()
    for step in range(3 * repeated_lines.SCANS_BEFORE_SORT + 2):
        probe = _file(rng, int(rng.integers(0, 40)), spread=int(rng.integers(2, 30)))
        expected = [(a, b) in kept for a, b in zip(probe["h1"].tolist(), probe["h2"].tolist(), strict=True)]
        assert lines.contains(probe).tolist() == expected, step
        if rng.random() < 0.7:  # the probed file becomes an earlier file, or a stored file joins at once
            added = probe if rng.random() < 0.5 else _file(rng, int(rng.integers(0, 200)), spread=25)
            if rng.random() < 0.5:  # kept in memory, or left on disk as the refresh leaves the older files
                lines.add(added)
            else:
                lines.add_stored([_stored(added, tmp_path / f"{step}.hashes.parquet", rng), tmp_path / "absent"])
            kept |= set(zip(added["h1"].tolist(), added["h2"].tolist(), strict=True))
        assert (len(lines) == 0) == (not kept)


def test_the_sorted_index_holds_each_line_once_and_tells_lines_sharing_a_first_hash_apart():
    lines = repeated_lines.EarlierLines()
    lines.add(pd.DataFrame({"h1": [5, 5, 5, 7, 7], "h2": [1, 2, 1, 9, 9]}, dtype="uint64"))
    lines.add(pd.DataFrame({"h1": [5, 8], "h2": [2, 0]}, dtype="uint64"))
    probe = pd.DataFrame({"h1": [5, 5, 5, 7, 8, 9], "h2": [2, 1, 3, 9, 0, 1]}, dtype="uint64")
    for _ in range(repeated_lines.SCANS_BEFORE_SORT + 1):  # scanned first, then sorted into the index
        assert lines.contains(probe).tolist() == [True, True, False, True, True, False]
    assert sorted(zip(lines.h1.tolist(), lines.h2.tolist(), strict=True)) == [(5, 1), (5, 2), (7, 9), (8, 0)]
    assert lines.h1.tolist() == sorted(lines.h1.tolist())


def test_a_new_file_is_judged_against_a_long_stored_history_without_sorting_it():
    """One new day on top of the history: the stored hashes are scanned, not sorted into the index."""
    rng = np.random.default_rng(7)
    history = pd.DataFrame({"h1": rng.integers(0, 2**63, 5000, dtype=np.uint64), "h2": np.uint64(1)})
    day = pd.concat([history.sample(10, random_state=1), _file(rng, 20, spread=2**40)], ignore_index=True)
    lines = repeated_lines.EarlierLines()
    lines.add(history)
    assert lines.contains(day).tolist() == [True] * 10 + [False] * 20
    assert len(lines.h1) == 0  # still as stored: one pass over it, no sort


def test_a_new_file_is_judged_against_stored_files_reading_only_their_matching_lines(tmp_path, monkeypatch):
    """The history left on disk: its first hashes scanned a block at a time, its matching lines read whole;
    a line sharing only its first hash with a stored line is not one of them."""
    monkeypatch.setattr(repeated_lines, "SCAN_ROWS", 100)
    rng = np.random.default_rng(11)
    history = pd.DataFrame({"h1": rng.integers(0, 2**63, 1000, dtype=np.uint64), "h2": np.uint64(1)})
    pq.write_table(pa.Table.from_pandas(history, preserve_index=False), tmp_path / "a.parquet", row_group_size=64)
    copied = history.iloc[[3, 64, 500, 999]]  # the first and last line of row groups, and lines inside them
    other = history.iloc[[200]].assign(h2=np.uint64(2))  # the same first hash, another line
    day = pd.concat([_file(rng, 5, spread=2**40), copied, other], ignore_index=True)
    lines = repeated_lines.EarlierLines()
    lines.add_stored([tmp_path / "a.parquet", tmp_path / "b.parquet"])  # b was never stored: skipped
    assert len(lines) == 1000
    assert lines.contains(day).tolist() == [False] * 5 + [True] * 4 + [False]
    assert len(lines.h1) == 0 and lines.contains(day.iloc[:5]).tolist() == [False] * 5
