"""Repeated purchase lines across files: two 64-bit hashes per row, kept beside each file's partition.

A line is repeated when the same line occurs earlier in its own file (`contract.duplicated_rows`, exact)
or in a file whose name sorts before (by these hashes, so a refresh of one new file never reads the
older files' rows, only their hashes: 16 bytes a row). Equality is the merged table's: every column
compared as text, a missing value equal to a missing value, and a column a file lacks is missing — so
each column adds its hash only where it has a value, mixed with the column's name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contract import duplicated_rows

HASH_COLUMNS = ("h1", "h2")
_KEYS = ("recomart-rows-01", "recomart-rows-02")  # pandas' hash key: 16 characters each


def _column_weight(name: str, key: str) -> np.uint64:
    """An odd 64-bit multiplier from the column's name: the same value in two columns hashes apart."""
    weight = pd.util.hash_array(np.array([name], dtype=object), hash_key=key)[0]
    return np.uint64(weight | np.uint64(1))


def _value_hashes(values: pd.Series) -> list[np.ndarray]:
    """Each key's hash of every value (0 where missing): the distinct values hashed once, then gathered."""
    encoded = pc.dictionary_encode(pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True))
    if isinstance(encoded, pa.ChunkedArray):  # a column read in blocks (large files) is chunked
        encoded = encoded.combine_chunks()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    hashed = []
    for key in _KEYS:
        table = np.append(
            pd.util.hash_array(distinct, hash_key=key, categorize=False) if len(distinct) else [], 0
        ).astype(np.uint64)
        hashed.append(table[codes])  # code -1 (missing) takes the appended 0
    return hashed


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
    within = duplicated_rows(frame)
    if earlier is None or len(earlier) == 0 or hashes.empty:
        return within
    lines = earlier if isinstance(earlier, EarlierLines) else EarlierLines.of(earlier)
    return within | lines.contains(hashes)


class EarlierLines:
    """The hashes of every line of the files before the one being read, kept sorted: a file's lines are
    looked up in O(log n) each, and adding a file costs one merge, so reading many files stays linear-ish
    instead of comparing each file with all the files before it again."""

    def __init__(self) -> None:
        self.h1 = np.empty(0, dtype=np.uint64)
        self.h2 = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.h1)

    @classmethod
    def of(cls, hashes: pd.DataFrame | None) -> EarlierLines:
        found = cls()
        if hashes is not None:
            found.add(hashes)
        return found

    def add(self, hashes: pd.DataFrame) -> None:
        """Keep these lines (each distinct line once: a repeat adds nothing to look up)."""
        if hashes.empty:
            return
        distinct = hashes.drop_duplicates()
        distinct = distinct.loc[~self.contains(distinct)]
        a, b = distinct["h1"].to_numpy(np.uint64), distinct["h2"].to_numpy(np.uint64)
        order = np.argsort(a, kind="stable")
        a, b = a[order], b[order]
        at = np.searchsorted(self.h1, a)
        self.h1, self.h2 = np.insert(self.h1, at, a), np.insert(self.h2, at, b)

    def contains(self, hashes: pd.DataFrame) -> np.ndarray:
        """Whether each line (its two hashes) is one of the kept lines."""
        a, b = hashes["h1"].to_numpy(np.uint64), hashes["h2"].to_numpy(np.uint64)
        left, right = np.searchsorted(self.h1, a, "left"), np.searchsorted(self.h1, a, "right")
        found = np.zeros(len(a), dtype=bool)
        one = right - left == 1
        found[one] = self.h2[left[one]] == b[one]
        for i in np.flatnonzero(right - left > 1):  # two lines share a first hash: compare the second of each
            found[i] = bool((self.h2[left[i] : right[i]] == b[i]).any())
        return found
