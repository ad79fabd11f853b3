"""Property: timestamps read by Arrow's fast path equal what pandas alone reads, value and unit.

`contract.parse_timestamps` parses the plain `YYYY-MM-DD HH:MM:SS` form with Arrow and leaves every
other value to pandas. For any mix of text near that form (impossible dates, leap seconds, offsets,
fractions, other formats, blanks, missing), both ways must give the same column, dtype included.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_project import contract

digits = st.integers
plain = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}".format,
    digits(0, 10000),
    digits(0, 13),
    digits(0, 32),
    st.sampled_from([" ", "T", "t", "  "]),
    digits(0, 25),
    digits(0, 61),
    digits(0, 61),
)
odd = st.sampled_from(
    [
        "2026-10-27",
        "2026-10-27T21:50:06Z",
        "2026-10-27 21:50:06+02:00",
        "2026-10-27 21:50:06.5",
        "2026-10-27 21:50:06.123456789",
        "27/10/2026 21:50",
        "10/27/2026",
        "20261027",
        "2026-1-2 3:4:5",
        "2016-12-31 23:59:60",
        "２０２６-10-27 21:50:06",
        "not a date",
        "",
        "   ",
    ]
)
value = st.one_of(plain, odd, st.none(), st.builds(" {} ".format, plain))


def pandas_only(values: pd.Series) -> pd.Series:
    """The column as pandas alone reads it (what `parse_timestamps` does when no value is plain)."""
    return contract._parse_any(values.astype("string").str.strip())


@settings(max_examples=300, deadline=None)
@given(st.lists(value, max_size=12))
def test_fast_path_reads_what_pandas_reads(values):
    series = pd.Series(values, dtype="string")
    pd.testing.assert_series_equal(contract.parse_timestamps(series), pandas_only(series))


@settings(max_examples=200, deadline=None)
@given(st.lists(value, max_size=12), st.integers(1, 4))
def test_a_column_read_in_blocks_reads_as_pandas_reads_it(values, block):
    """Large columns are parsed a block of rows at a time (bounded memory): across block edges, with rows
    picked from a larger table (their index kept), the result is pandas' own."""
    series = pd.Series(values, dtype="string", index=range(7, 7 + 3 * len(values), 3))
    saved, contract.TIMESTAMP_BLOCK = contract.TIMESTAMP_BLOCK, block
    try:
        parsed = contract.parse_timestamps(series)
    finally:
        contract.TIMESTAMP_BLOCK = saved
    pd.testing.assert_series_equal(parsed, pandas_only(series))


@pytest.mark.parametrize(
    "text",
    ["2016-12-31 23:59:60", "2026-02-30 10:00:00", "2026-13-01 00:00:00", "2026-10-27 24:00:00", "0000-01-01 00:00:00"],
)
def test_impossible_plain_times_are_decided_by_pandas(text):
    series = pd.Series(["2026-10-27 21:50:06", text], dtype="string")
    pd.testing.assert_series_equal(contract.parse_timestamps(series), pandas_only(series))


def test_plain_times_take_the_fast_path():
    """Clean exports are really read by Arrow (the fast path is not silently declining everything)."""
    text = pd.Series(["2026-10-27 21:50:06", "2026-10-27T08:00:00"], dtype="string")
    assert contract._plain_timestamps(text).notna().all()


def test_a_time_outside_nanosecond_range_beside_nanoseconds_is_unreadable_not_a_crash():
    """pandas cannot hold year 0 in a nanosecond column (its own setitem failed with an AssertionError)."""
    parsed = contract.parse_timestamps(pd.Series(["0000-01-01 00:00:00", "2026-10-27 21:50:06.123456789"]))
    assert parsed.isna().tolist() == [True, False]
    assert parsed.iloc[1] == pd.Timestamp("2026-10-27 21:50:06.123456789", tz="UTC")
