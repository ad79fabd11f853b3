"""Property: the fast CSV reader (Arrow) gives exactly what the pandas reader gives, or steps aside.

`ingest.read_csv` tries Arrow's multi-threaded parser first and falls back to `pd.read_csv` on
anything Arrow might read differently. For every generated CSV (the shapes of test_readers_property:
contract headers, stray quotes and delimiters, line breaks in fields, ragged rows, encodings,
compression) the outcome with the fast path — the frame, or the error message — must equal the
outcome without it. A file the fast path takes must also really be taken by it for clean exports.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagster_project import ingest
from dagster_project.contract import TRANSACTIONS, USERS, InputLimits
from tests.test_readers_property import SMALL, checked, csv_files

Outcome = tuple[str, object]


def outcome(path: Path, spec, limits: InputLimits) -> Outcome:
    try:
        return "frame", ingest.read_csv(path, spec, limits)
    except ingest.DataInputError as exc:
        return "error", str(exc)


def both_ways(path: Path, spec, limits: InputLimits, monkeypatch) -> tuple[Outcome, Outcome]:
    fast = outcome(path, spec, limits)
    with monkeypatch.context() as patched:
        patched.setattr(ingest, "_read_csv_arrow", lambda *args: None)
        slow = outcome(path, spec, limits)
    return fast, slow


def assert_same(fast: Outcome, slow: Outcome) -> None:
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "frame":
        pd.testing.assert_frame_equal(fast[1], slow[1])
    else:
        assert fast[1] == slow[1]


@checked(max_examples=300)
@given(case=csv_files(), limits=st.sampled_from([SMALL, InputLimits()]))
def test_the_fast_reader_reads_what_pandas_reads(case, limits):
    spec, content, _ = case
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        path = Path(folder) / spec.pattern.replace("*", "1")
        path.write_bytes(content)
        assert_same(*both_ways(path, spec, limits, monkeypatch))


CLEAN = "transaction_id,user_id,product_id,quantity,unit_price,timestamp\n" + "".join(
    f"T{i},{i % 7}.0,p{i % 5},{1 + i % 3},{i}.5,2026-01-0{1 + i % 9} 10:00:00\n" for i in range(200)
)


@pytest.mark.parametrize(
    "content",
    [
        CLEAN.encode(),
        b"\xef\xbb\xbf" + CLEAN.encode(),  # byte-order mark
        gzip.compress(CLEAN.encode()),
        CLEAN.replace(",", ";").encode(),
        CLEAN.replace("\n", "\r\n").encode(),
        ('"' + CLEAN.replace(",", '","').replace("\n", '"\n"')[:-1]).encode(),  # every field quoted
        (CLEAN + "T9,,p1,1,,\n").encode(),  # empty fields
    ],
    ids=["plain", "bom", "gzip", "semicolons", "crlf", "all quoted", "empty fields"],
)
def test_clean_exports_take_the_fast_path_and_match(tmp_path, monkeypatch, content):
    path = tmp_path / "transactions.csv"
    path.write_bytes(content)
    taken = []
    real = ingest._read_csv_arrow

    def spy(*args):
        taken.append(result := real(*args))
        return result

    monkeypatch.setattr(ingest, "_read_csv_arrow", spy)
    fast = outcome(path, TRANSACTIONS, InputLimits())
    assert taken and taken[0] is not None, "a clean export should be read by Arrow"
    monkeypatch.setattr(ingest, "_read_csv_arrow", lambda *args: None)
    assert_same(fast, outcome(path, TRANSACTIONS, InputLimits()))


@pytest.mark.parametrize(
    "content",
    [
        b'user_id,name\n1,"open quote\n2,Ann\n',
        b'user_id,name\n1,"two\nlines"\n2,Ann\n',
        b"user_id,name\n1, Ann\n",
        b"user_id,name\n1,Ann,extra\n",
        b"user_id,name\n1,Ann\n2\n",
        b"user_id,name\n1,Z\xe9\n",
        b"user_id,name,\n1,Ann,\n",  # pandas names an empty header field "Unnamed: 2"
        b",user_id\n0,1\n",  # the index column DataFrame.to_csv writes
        b"user_id, ,name\n1,x,Ann\n",
        b"user_id,,\n1,,\n",  # two empty names: Arrow keeps both as ''
        b"user_id,name,,,\n1,Ann,,,\n",  # Excel's trailing empty columns
        b'user_id, "name"\n1,Ann\n',  # skipinitialspace applies to the header too
        b"user_id\n1\n\t\n",  # pandas skips a line of spaces and tabs
        b"user_id\n\t\n",
        b" \nuser_id\n1\n",
        b" \nuser_id\n",
        b"user_id\n\t\n" + b"x" * 70_000,
        b"user_id,name\n\r,b\n",  # a blank line of a lone carriage return: pandas shifts the next line
        b"user_id,name\r\n1,x\r\n\r,b\r\n",
        b"\r,user_id\nx,1\n",
        gzip.compress(b"user_id,name\n\r,b\n"),
    ],
    ids=[
        "unclosed quote",
        "line break in a field",
        "space after the delimiter",
        "too many",
        "too few",
        "cp1252 byte",
        "empty header name",
        "index column",
        "blank header name",
        "two empty header names",
        "trailing empty columns",
        "space then quoted header name",
        "tab line, one column",
        "tab line, only row",
        "space line before the header",
        "space line before a header without rows",
        "tab line then a long value",
        "lone carriage return line",
        "stray carriage return in CRLF",
        "lone carriage return before the header",
        "gzip of a lone carriage return line",
    ],
)
def test_what_arrow_might_read_differently_goes_to_pandas(tmp_path, monkeypatch, content):
    path = tmp_path / "users.csv"
    path.write_bytes(content)
    assert_same(*both_ways(path, USERS, InputLimits(), monkeypatch))


def test_a_lone_carriage_return_line_is_found_across_chunk_boundaries():
    import io

    def differs(content: bytes, chunk: int) -> bool:
        """What sends a file to pandas before Arrow is tried: a quote never closed, or a lone-CR line."""
        quotes, lone_cr = ingest._scan(io.BytesIO(content), chunk)
        return quotes % 2 == 1 or lone_cr

    clean = b"user_id,name\r\n1,x\r\n2,y\r\n"
    lone = b"user_id,name\n1,x\n\r,b\n"
    for chunk in range(1, len(lone) + 2):
        assert not differs(clean, chunk) and not differs(clean.replace(b"\r\n", b"\r"), chunk)
        assert differs(lone, chunk) and differs(b"\r,user_id\nx,1\n", chunk)
        assert differs(b'user_id,name\n1,"x\n', chunk)  # a quote never closed


@pytest.mark.parametrize("line_end", ["\r", "\r\n", "\n"])
def test_a_blank_line_of_a_lone_carriage_return_shifts_no_value(tmp_path, line_end):
    """pandas drops the leading delimiter of the line after a lone carriage return; such files are read
    with one kind of line end, so an empty first field stays in its column."""
    rows = ["transaction_id,user_id,product_id,timestamp", ",1,p1,2026-01-01 10:00:00", "\r,2,p2,2026-01-02 10:00:00"]
    path = tmp_path / "transactions.csv"
    path.write_bytes(line_end.join(rows).encode() + line_end.encode())
    frame = ingest.read_csv(path, TRANSACTIONS)
    assert frame["transaction_id"].isna().all()
    assert frame["user_id"].tolist() == ["1", "2"] and frame["product_id"].tolist() == ["P1", "P2"]
    assert frame["timestamp"].tolist() == ["2026-01-01 10:00:00", "2026-01-02 10:00:00"]
