"""Repeated purchase lines across files: two 64-bit hashes per row, kept beside each file's partition.

A line is repeated when the same line occurs earlier in its own file (`contract.duplicated_rows`, exact)
or in a file whose name sorts before (by these hashes, so a refresh of one new file never reads the
older files' rows, only their hashes: 16 bytes a row). Equality is the merged table's: every column
compared as text, a missing value equal to a missing value, and a column a file lacks is missing — so
each column adds its hash only where it has a value, mixed with the column's name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project.contract import duplicated_rows

HASH_COLUMNS = ("h1", "h2")
_KEYS = ("recomart-rows-01", "recomart-rows-02")  # pandas' hash key: 16 characters each


@functools.cache
def _column_weight(name: str, key: str) -> np.uint64:
    """An odd 64-bit multiplier from the column's name: the same value in two columns hashes apart."""
    weight = pd.util.hash_array(np.array([name], dtype=object), hash_key=key)[0]
    return np.uint64(weight | np.uint64(1))


SHORT_BYTES = 64  # values up to this many UTF-8 bytes are hashed in numpy; longer ones by pandas
_BLOCK = 1 << 15  # values per block when hashing in numpy (a few of block x 64 x 8 bytes of temporaries; small
# blocks stay in the CPU's cache: at 10M rows 1 << 15 took 40 % less time and 200 MB less than 1 << 18)


def _weights(key: str) -> np.ndarray:
    """Odd 64-bit multipliers, one per byte position and one for the length, fixed by the key."""
    seed = int(pd.util.hash_array(np.array([key], dtype=object), hash_key=key)[0])
    return np.random.default_rng(seed).integers(0, 2**63, size=SHORT_BYTES + 1, dtype=np.uint64) * 2 + 1


_WEIGHTS = {key: _weights(key) for key in _KEYS}


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _text_hashes(text: pa.LargeStringArray) -> list[np.ndarray]:
    """Each key's 64-bit hash of each value's UTF-8 bytes (0 where missing); the same text, the same hash.

    Short values (all ids, times and numbers) are hashed from Arrow's byte buffer in numpy: a weighted
    sum of (byte + 1) over positions plus the length, then mixed; no Python string per value. Two
    different values collide with probability about 2^-56 per key; two keys are kept.
    """
    n = len(text)
    out = [np.zeros(n, dtype=np.uint64) for _ in _KEYS]
    if n == 0:
        return out
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + n + 1]
    buffer = text.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None and buffer.size else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    present = ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    long = present & (lengths > SHORT_BYTES)
    width = int(min(lengths.max(), SHORT_BYTES))
    positions = np.arange(width)
    for start in range(0, n, _BLOCK):
        first, size = offsets[:-1][start : start + _BLOCK], lengths[start : start + _BLOCK]
        inside = positions < np.minimum(size, SHORT_BYTES)[:, None]
        at = np.minimum(first[:, None] + positions, data.size - 1)
        codes = np.where(inside, data[at].astype(np.uint64) + np.uint64(1), np.uint64(0))
        kept = present[start : start + _BLOCK]
        for hashed, key in zip(out, _KEYS, strict=True):
            weights = _WEIGHTS[key]
            with np.errstate(over="ignore"):
                h = (codes * weights[:width]).sum(axis=1, dtype=np.uint64)
                h += (size.astype(np.uint64) + np.uint64(1)) * weights[SHORT_BYTES]
            hashed[start : start + _BLOCK] = np.where(kept, _mix(h), np.uint64(0))
    if long.any():
        values = text.filter(pa.array(long)).to_numpy(zero_copy_only=False).astype(object)
        for hashed, key in zip(out, _KEYS, strict=True):
            hashed[long] = pd.util.hash_array(values, hash_key=key, categorize=False)
    return out


def _value_hashes(values: pd.Series) -> list[np.ndarray]:
    """Each key's hash of every value (0 where missing).

    A column of few distinct values (quantities, products) hashes them once and gathers; a column of
    mostly distinct values (ids, times) is hashed row by row, which costs less than finding them distinct.
    """
    text = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    sample = text.slice(0, 100_000)
    if len(sample) and pc.count_distinct(sample).as_py() > len(sample) // 2:
        # a column read in blocks (large files) is chunked: hashed chunk by chunk, its text never copied whole
        chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
        per_chunk = [_text_hashes(chunk) for chunk in chunks]
        return [np.concatenate([hashes[key] for hashes in per_chunk]) for key in range(len(_KEYS))]
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = pc.dictionary_encode(text)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return [np.append(table, np.uint64(0))[codes] for table in _text_hashes(encoded.dictionary)]


def row_hashes(frame: pd.DataFrame) -> pd.DataFrame:
    """Two uint64 hashes per row over every column (`frame` without source file and row columns)."""
    totals = [np.zeros(len(frame), dtype=np.uint64) for _ in _KEYS]
    for column in frame.columns:
        for total, key, hashed in zip(totals, _KEYS, _value_hashes(frame[column]), strict=True):
            with np.errstate(over="ignore"):
                total += hashed * _column_weight(str(column), key)
    return pd.DataFrame(dict(zip(HASH_COLUMNS, totals, strict=True)))


def repeated(frame: pd.DataFrame, hashes: pd.DataFrame, earlier: EarlierLines | pd.DataFrame | None) -> np.ndarray:
    """True for each row that repeats a row earlier in `frame` or a line of `earlier` (older files' lines)."""
    within = duplicated_rows(frame, hashes if len(hashes) == len(frame) else None)
    if earlier is None or len(earlier) == 0 or hashes.empty:
        return within
    lines = earlier if isinstance(earlier, EarlierLines) else EarlierLines.of(earlier)
    return within | lines.contains(hashes)


# A stored file's hashes are looked up by scanning them (one hash-table probe per stored line, about a
# sixth of sorting them) until this many lookups, then sorted into the index: a refresh of one new file
# scans the history once, a refresh of many files sorts it once (rent until renting costs what buying does).
SCANS_BEFORE_SORT = 4
# Stored first hashes read at once when scanning a file on disk (at least as many as the lines looked up, so
# the looked-up lines' hash table is built once per block): 8 MB a block, reused, instead of the whole column.
SCAN_ROWS = 1 << 20


def _distinct_sorted(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a, b) ordered by a, each distinct pair once (only rows sharing an `a` are compared)."""
    order = np.argsort(a)
    a, b = a[order], b[order]
    shared = np.zeros(len(a), dtype=bool)
    if len(a) > 1:
        same = a[1:] == a[:-1]
        shared[1:] |= same
        shared[:-1] |= same
    if shared.any():  # a repeated line (or two lines sharing a first hash): keep each pair once
        at = np.flatnonzero(shared)
        repeat = pd.DataFrame({"a": a[at], "b": b[at]}).duplicated().to_numpy()
        keep = np.ones(len(a), dtype=bool)
        keep[at[repeat]] = False
        a, b = a[keep], b[keep]
    return a, b


def _pairs(hashes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return hashes["h1"].to_numpy(np.uint64), hashes["h2"].to_numpy(np.uint64)


def _columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    first, second = (table.column(c).to_numpy().astype(np.uint64, copy=False) for c in HASH_COLUMNS)
    return first, second


def _read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    return _columns(pq.read_table(path, columns=list(HASH_COLUMNS)))


def _stored_candidates(path: Path, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines of a stored hashes file whose first hash is one of `a`: their two hashes, nothing else read.

    Only the first-hash column is read, a block at a time, each block probing a hash table of `a`; the
    second hashes are read from the row groups that hold a candidate (none, most nights).
    """
    file = pq.ParquetFile(path)
    rows, start = [], 0
    for batch in file.iter_batches(batch_size=max(len(a), SCAN_ROWS), columns=[HASH_COLUMNS[0]], use_threads=False):
        first = batch.column(0).to_numpy().astype(np.uint64, copy=False)
        rows.append(start + np.flatnonzero(pd.Series(first, copy=False).isin(a).to_numpy()))
        start += len(first)
    at = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    if at.size == 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    sizes = np.array([file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    group = np.searchsorted(starts, at, "right") - 1  # each candidate's row group
    groups = np.unique(group)
    table = file.read_row_groups(groups.tolist(), columns=list(HASH_COLUMNS), use_threads=False)
    # a row's place in the groups read: its place in its group plus the rows of the groups read before it
    before = np.cumsum(sizes[groups]) - sizes[groups]
    local = at - starts[group] + before[np.searchsorted(groups, group)]
    return _columns(table.take(pa.array(local)))


class EarlierLines:
    """The hashes of every line of the files before the one being read.

    Lines are kept two ways: a sorted index of distinct lines (looked up in O(log n) each, grown by merging)
    and, not yet sorted, files added as they were stored: in memory, or left on disk (`add_stored`). A
    lookup scans each unsorted file once (a hash table of the looked-up lines, probed by every stored
    line's first hash: the cost of one pass over them; a file on disk is read a block of first hashes at a
    time, and only its matching lines whole), and after `SCANS_BEFORE_SORT` lookups the unsorted files are
    read and sorted into the index. So judging one new file against a long history costs one pass over the
    history's first hashes, and reading many files sorts it once instead of comparing each file with all
    the files before it again.
    """

    def __init__(self) -> None:
        self.h1 = np.empty(0, dtype=np.uint64)  # sorted, each distinct line once
        self.h2 = np.empty(0, dtype=np.uint64)
        self._unsorted: list[tuple[np.ndarray, np.ndarray]] = []
        self._stored: list[tuple[Path, int]] = []  # files on disk, not read yet, and their line counts
        self._scans = 0  # lookups since the oldest unsorted file was added

    def __len__(self) -> int:
        return len(self.h1) + sum(len(a) for a, _ in self._unsorted) + sum(rows for _, rows in self._stored)

    @classmethod
    def of(cls, hashes: pd.DataFrame | None) -> EarlierLines:
        found = cls()
        if hashes is not None:
            found.add(hashes)
        return found

    def add(self, hashes: pd.DataFrame) -> None:
        """Keep these lines (a file's two hash columns); they count from the next lookup on."""
        if not hashes.empty:
            self._unsorted.append(_pairs(hashes))

    def add_stored(self, paths: Iterable[Path]) -> None:
        """Keep the lines of these stored hashes files (`row_hashes` as Parquet), read only when looked up;
        files that do not exist are skipped."""
        for path in paths:
            if Path(path).exists() and (rows := pq.read_metadata(path).num_rows):
                self._stored.append((Path(path), rows))

    def contains(self, hashes: pd.DataFrame) -> np.ndarray:
        """Whether each line (its two hashes) is one of the kept lines."""
        a, b = _pairs(hashes)
        if (self._unsorted or self._stored) and self._scans + 1 >= SCANS_BEFORE_SORT:
            self._sort_in()
        found = self._in_index(a, b)
        if (self._unsorted or self._stored) and len(a):
            self._scans += 1
            for h1, h2 in self._unsorted:
                found |= self._in_unsorted(h1, h2, a, b)
            for path, _ in self._stored:
                found |= self._among(*_stored_candidates(path, a), a, b)
        return found

    def _sort_in(self) -> None:
        """Merge the unsorted files into the sorted index (lines it holds already are not added twice)."""
        parts = [*self._unsorted, *(_read_pairs(path) for path, _ in self._stored)]
        a, b = (np.concatenate(columns) for columns in zip(*parts, strict=True))
        self._unsorted, self._stored, self._scans = [], [], 0
        a, b = _distinct_sorted(a, b)
        new = ~self._in_index(a, b)
        a, b = a[new], b[new]
        at = np.searchsorted(self.h1, a)
        self.h1, self.h2 = np.insert(self.h1, at, a), np.insert(self.h2, at, b)

    def _in_index(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        left, right = np.searchsorted(self.h1, a, "left"), np.searchsorted(self.h1, a, "right")
        found = np.zeros(len(a), dtype=bool)
        one = right - left == 1
        found[one] = self.h2[left[one]] == b[one]
        for i in np.flatnonzero(right - left > 1):  # two lines share a first hash: compare the second of each
            found[i] = bool((self.h2[left[i] : right[i]] == b[i]).any())
        return found

    @staticmethod
    def _in_unsorted(h1: np.ndarray, h2: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Which lines (a, b) are among the stored lines (h1, h2): one pass over the stored first hashes
        finds the candidates, then their pairs are compared exactly."""
        candidates = pd.Series(h1, copy=False).isin(a).to_numpy()
        return EarlierLines._among(h1[candidates], h2[candidates], a, b)

    @staticmethod
    def _among(h1: np.ndarray, h2: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Which lines (a, b) are among the few lines (h1, h2), their pairs compared exactly."""
        if not len(h1):
            return np.zeros(len(a), dtype=bool)
        index = EarlierLines()
        index.h1, index.h2 = _distinct_sorted(h1, h2)
        return index._in_index(a, b)
