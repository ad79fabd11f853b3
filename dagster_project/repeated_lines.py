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


def repeated(frame: pd.DataFrame, hashes: pd.DataFrame, earlier: pd.DataFrame | None) -> np.ndarray:
    """True for each row that repeats a row earlier in `frame` or any row of `earlier` (hashes of older files)."""
    within = duplicated_rows(frame)
    if earlier is None or earlier.empty or hashes.empty:
        return within
    # first narrow by one hash (a sorted search), then compare both
    first = np.isin(hashes["h1"].to_numpy(), earlier["h1"].to_numpy())
    if not first.any():
        return within
    seen = pd.MultiIndex.from_frame(earlier.loc[np.isin(earlier["h1"].to_numpy(), hashes["h1"].to_numpy()[first])])
    candidates = pd.MultiIndex.from_frame(hashes.loc[first])
    across = np.zeros(len(frame), dtype=bool)
    across[np.flatnonzero(first)] = candidates.isin(seen)
    return within | across
