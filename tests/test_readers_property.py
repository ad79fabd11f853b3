"""Property: whatever bytes sit in a file that matches a pattern, reading it gives a clean frame or the
project's own DataInputError naming the file, never another exception, and never a message quoting
the content of a file that is not an export.

Generated files: random bytes (some behind real file signatures), random CSV shapes (headers from the
contract, misspellings and foreign names, random delimiters, quoting, encodings, line endings, ragged
rows, compression) and random JSON trees (arrays, JSON Lines, wrapped objects, deep nesting, duplicate
keys, non-finite numbers). Half the cases read with small limits so the bounds are exercised cheaply.

Deterministic (derandomize) and bounded: a fixed number of examples per strategy, and a time budget
after which the remaining examples of a run are skipped rather than slowing CI.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dagster_project.contract import ENTITIES, PRODUCTS, TRANSACTIONS, USERS, EntitySpec, InputLimits
from dagster_project.ingest import ROW_COLUMN, SOURCE_COLUMN, DataInputError, read_entity

BUDGET_SECONDS = 12.0  # per strategy: the three stay well inside a minute even on a slow machine
SMALL = InputLimits(max_field_chars=40, max_header_bytes=200, max_columns=8, max_json_depth=5)
FOREIGN = "ZQX"  # every name or value that is not from the contract carries it: a message must never quote it
CSV_SPECS = (USERS, TRANSACTIONS)


def checked(max_examples: int):
    """Hypothesis settings shared by the three properties: deterministic, no deadline, no database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class Budget:
    """Seconds per property; examples past it return at once (fewer examples, never a flaky failure)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.started = seconds, None

    def spent(self) -> bool:
        self.started = self.started or time.monotonic()
        return time.monotonic() - self.started > self.seconds


def read_file(spec: EntitySpec, name: str, content: bytes, limits: InputLimits, header_is_foreign: bool) -> None:
    """The property itself: a frame that meets the contract, or a DataInputError that names the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            frame = read_entity(Path(folder), spec, limits=limits)
        except DataInputError as exc:
            message = str(exc)
            assert name in message, message
            assert f"{FOREIGN}DATA" not in message, message  # no data value is ever quoted
            if header_is_foreign:
                assert FOREIGN not in message, message
            return
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert set(spec.required) <= set(frame.columns)
    assert frame.columns.is_unique
    assert (frame[SOURCE_COLUMN] == name).all() and frame[ROW_COLUMN].tolist() == list(range(1, len(frame) + 1))
    for column in frame.columns.drop([SOURCE_COLUMN, ROW_COLUMN]):
        assert isinstance(frame[column].dtype, pd.StringDtype), column
        longest = frame[column].str.len().max()
        assert longest is pd.NA or longest <= limits.max_field_chars, column
    for column in spec.id_columns:
        if column in frame:
            ids = frame[column].dropna()
            assert not ids.str.fullmatch(r"\s*|-?\d+\.0+").any()


limits_strategy = st.sampled_from([SMALL, InputLimits()])
specs = st.sampled_from(ENTITIES)

# --- random bytes --------------------------------------------------------------------------------

SIGNATURES = [
    b"",
    b"",
    b"",
    b"PK\x03\x04",
    b"PK\x03\x04[Content_Types].xml",
    b"\x1f\x8b",
    b"BZh91AY&SY",
    b"\xfd7zXZ\x00",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xff\xfe\x00\x00",
    b"\xef\xbb\xbf",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"PAR1",
    b"%PDF-1.7",
    b"SQLite format 3\x00",
    b"\x28\xb5\x2f\xfd",
]


@st.composite
def random_files(draw) -> bytes:
    body = draw(st.binary(max_size=600))
    kind = draw(st.sampled_from(["raw", "raw", "gzip", "truncated gzip", "bz2"]))
    if kind == "gzip":
        return gzip.compress(body)
    if kind == "truncated gzip":
        packed = gzip.compress(body)
        return packed[: draw(st.integers(0, len(packed)))]
    if kind == "bz2":
        return bz2.compress(body)
    return draw(st.sampled_from(SIGNATURES)) + body


bytes_budget = Budget(BUDGET_SECONDS)


@checked(max_examples=150)
@given(spec=specs, content=random_files(), limits=limits_strategy)
@example(spec=TRANSACTIONS, content=b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", limits=InputLimits())
@example(spec=USERS, content=gzip.compress(b"user_id,name\n1,Ann\n" * 3), limits=InputLimits())
def test_random_bytes_are_read_or_refused_by_name(spec, content, limits):
    if bytes_budget.spent():
        return
    read_file(spec, spec.pattern.replace("*", "1"), content, limits, header_is_foreign=False)


# --- random CSV shapes ---------------------------------------------------------------------------

foreign_names = st.from_regex(rf"{FOREIGN}[A-Za-z0-9 _-]{{0,12}}", fullmatch=True)
plain_values = st.sampled_from(
    [
        "1001",
        "1002",
        "1001.0",
        " P0001 ",
        "p0002",
        "",
        "3",
        "3.5",
        "2026-01-01 10:00:00",
        "2025-12-24T08:00:00+02:00",
        "03/01/2026 10:00",
        "a@b.co",
        "Zoë",
        "Ann",
    ]
)
odd_values = st.one_of(
    st.sampled_from(
        [
            "1e309",
            "inf",
            "-Infinity",
            "NaN",
            "nan",
            "0",
            "-5",
            "1000000000",
            "0001-01-01",
            "1500-06-01",
            "2099-01-01",
            '"',
            '""',
            "a,b",
            "a;b",
            "a|b",
            "a\tb",
            "x\ny",
            "x\r\ny",
            "\\",
            "9" * 400,
        ]
    ),
    st.from_regex(rf"{FOREIGN}DATA[^\x00]{{0,60}}", fullmatch=True),
    st.text(max_size=20),
)
values = st.one_of(plain_values, plain_values, plain_values, odd_values)


@st.composite
def headers(draw, spec: EntitySpec) -> list[str]:
    """Mostly a real export's header (required columns, some optional ones, a foreign one), else anything."""
    if draw(st.integers(0, 3)):
        names = [
            *spec.required,
            *draw(st.lists(st.sampled_from(spec.optional), unique=True)),
            *draw(st.lists(foreign_names, max_size=2)),
        ]
        return draw(st.permutations(names))
    known = list(spec.columns) + ["User ID", "userid", "Product-ID", "time stamp"]
    return draw(st.lists(st.one_of(st.sampled_from(known), foreign_names), min_size=1, max_size=10))


@st.composite
def csv_files(draw) -> tuple[EntitySpec, bytes, bool]:
    spec = draw(st.sampled_from(CSV_SPECS))
    names = draw(headers(spec))
    header_is_foreign = all(n.startswith(FOREIGN) for n in names)
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = len(names)
    row = st.one_of(st.lists(values, min_size=width, max_size=width), st.lists(values, max_size=width + 2))
    rows = draw(st.lists(row, max_size=12))
    out = io.StringIO()
    if draw(st.integers(0, 3)):
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
        writer = csv.writer(
            out, delimiter=delimiter, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))
        )
        writer.writerow(names)
        writer.writerows(rows)
    else:  # written by hand: stray quotes and delimiters inside fields break rows the way real files do
        out.write("\n".join(delimiter.join(r) for r in [names, *rows]) + draw(st.sampled_from(["", "\n"])))
    text = out.getvalue()
    if draw(st.booleans()):
        text = "\n" * draw(st.integers(0, 2)) + text
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    content = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 4)) == 0:
        content = gzip.compress(content)
    return spec, content, header_is_foreign


csv_budget = Budget(BUDGET_SECONDS)


@checked(max_examples=300)
@given(case=csv_files(), limits=limits_strategy, gz_name=st.booleans())
def test_random_csv_shapes_are_read_or_refused_by_name(case, limits, gz_name):
    if csv_budget.spent():
        return
    spec, content, header_is_foreign = case
    name = spec.pattern.replace("*", "1") + (".gz" if gz_name else "")
    read_file(spec, name, content, limits, header_is_foreign)


# --- random JSON trees ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True), values
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)
keys = st.one_of(st.sampled_from(list(PRODUCTS.columns) + [" product_id", "Product ID", "colour"]), foreign_names)
field_values = st.one_of(plain_values, plain_values, st.integers(0, 10**6), scalars, trees)


@st.composite
def records(draw) -> dict:
    """Mostly a product (id and name, some optional fields), with odd values; else any object."""
    if draw(st.integers(0, 3)):
        record = {"product_id": draw(field_values), "name": draw(field_values)}
        record.update(draw(st.dictionaries(keys, field_values, max_size=4)))
        return record
    return draw(st.dictionaries(keys, trees, max_size=7))


@st.composite
def json_files(draw) -> tuple[bytes, bool]:
    items = draw(st.lists(records(), max_size=8))
    header_is_foreign = all(str(k).startswith(FOREIGN) for r in items for k in r)
    shape = draw(
        st.sampled_from(
            ["array", "array", "array", "lines", "lines", "wrapped", "tree", "deep", "duplicate key", "huge number"]
        )
    )
    if shape == "array":
        text = json.dumps(items)
    elif shape == "lines":
        text = "\n".join(json.dumps(r) for r in items)
    elif shape == "wrapped":
        text = json.dumps({draw(st.sampled_from(["products", f"{FOREIGN}key"])): items})
    elif shape == "tree":
        text, header_is_foreign = json.dumps(draw(trees)), False
    elif shape == "deep":
        depth = draw(st.sampled_from([3, 10, 50, 900, 5000, 100_000]))
        nested = "[" * depth + "]" * depth
        text = json.dumps([{"product_id": "P1", "name": "n", "extra": "X"}]).replace('"X"', nested)
        header_is_foreign = False
    elif shape == "huge number":  # more digits than Python converts to an int
        text, header_is_foreign = '[{"product_id": 1' + "0" * 5000 + ', "name": "n"}]', False
    else:
        text, header_is_foreign = '[{"product_id": "P1", "name": "a", "name": "b"}]', False
    if not draw(st.integers(0, 4)) and len(text) > 2:  # truncated or damaged
        text = text[: draw(st.integers(1, len(text) - 1))]
    content = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16"])), errors="replace")
    return (gzip.compress(content) if draw(st.integers(0, 4)) == 0 else content), header_is_foreign


json_budget = Budget(BUDGET_SECONDS)


DEEP = "[" * 100_000 + "]" * 100_000


@checked(max_examples=300)
@given(case=json_files(), limits=limits_strategy)
@example(case=(f'[{{"product_id": "P1", "name": "n"}}, {DEEP}]'.encode(), False), limits=InputLimits())
@example(
    case=(f'{{"product_id": "P1", "name": "n"}}\n{{"product_id": "P2", "name": {DEEP}}}'.encode(), False),
    limits=InputLimits(),
)
def test_random_json_trees_are_read_or_refused_by_name(case, limits):
    if json_budget.spent():
        return
    content, header_is_foreign = case
    read_file(PRODUCTS, "products.json", content, limits, header_is_foreign)


@pytest.mark.parametrize("spec", ENTITIES, ids=[s.name for s in ENTITIES])
def test_the_sample_reads_cleanly_under_the_default_limits(spec, sample_source):
    frame = read_entity(sample_source, spec)
    assert len(frame) > 0 and set(spec.required) <= set(frame.columns)
