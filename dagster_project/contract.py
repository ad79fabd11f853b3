"""The input contract: which files, which columns, and how values are read.

Ids may be numeric or text in the exports; everywhere after reading they are trimmed text, and a
numeric id written as a float (`17850.0`) is the same id as `17850`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class EntitySpec:
    name: str
    pattern: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    id_columns: tuple[str, ...]
    case_insensitive: tuple[str, ...] = ()  # ids matched regardless of case (stored upper-case)
    text_columns: tuple[str, ...] = ()  # must be text (or a number) in JSON: objects, lists, booleans are not

    @property
    def patterns(self) -> tuple[str, ...]:
        """The file pattern and its gzip-compressed form: `users*.csv` and `users*.csv.gz`."""
        return (self.pattern, f"{self.pattern}.gz")

    @property
    def file_format(self) -> str:
        return "JSON" if self.pattern.endswith(".json") else "CSV"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


USERS = EntitySpec(
    "users", "users*.csv", ("user_id",), ("name", "email", "age", "gender", "country", "signup_date"), ("user_id",)
)
PRODUCTS = EntitySpec(
    "products",
    "products*.json",
    ("product_id", "name"),
    ("category", "brand", "price"),
    ("product_id",),
    ("product_id",),
    ("product_id", "name"),
)
TRANSACTIONS = EntitySpec(
    "transactions",
    "transactions*.csv",
    ("user_id", "product_id", "timestamp"),
    ("transaction_id", "quantity", "unit_price"),
    ("transaction_id", "user_id", "product_id"),
    ("product_id",),
)
ENTITIES = (USERS, PRODUCTS, TRANSACTIONS)

MIN_AGE, MAX_AGE = 13, 110
MAX_QUANTITY = 10_000
# Above any real price in any currency, and low enough that quantity x price x rows stays finite.
MAX_PRICE = 1e12


@dataclass(frozen=True)
class InputLimits:
    """Bounds no real export reaches: past them a file is broken (an unclosed quote swallowing the rest
    of the file, a binary file, a generated bomb), and reading on would only cost time and memory.

    A field or header over its limit fails the file with a message naming the row and column; an
    earlier timestamp is an invalid value, dropped and counted by `timestamp_valid`. These are the
    defaults; a run may set each one (the `input_limits` resource, with its bounds, in defs/run_config.py).
    """

    max_field_chars: int = 64 * 1024
    max_header_bytes: int = 256 * 1024
    max_columns: int = 1_000
    max_json_depth: int = 32
    earliest_timestamp: str = "1990-01-01"  # the first plausible purchase; earlier dates are export defects

    @property
    def earliest(self) -> pd.Timestamp:
        return pd.Timestamp(self.earliest_timestamp, tz="UTC")


LIMITS = InputLimits()
# Catalogue lines that are not merchandise (postage, fees, manual adjustments): never recommended.
NON_PRODUCT_PATTERN = (
    r"(?i)^\s*(?:manual|discount|samples?|carriage|adjust.*|bank charges?|amazon fee"
    r"|cruk commission)\s*$"
    r"|\b(?:postage|shipping fee|delivery fee|service fee|handling fee)\b"
)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def normalize_ids(values: pd.Series) -> pd.Series:
    """Trimmed text ids; '17850.0' becomes '17850'; blanks become missing."""
    text = values.astype("string").str.strip()
    if text.str.contains(".", regex=False).any():  # most exports have no point in any id: no regex pass
        text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "")


def id_key(value: object) -> str:
    """The text form of one id as the pipeline stores it (for ids given as int or str)."""
    return normalize_ids(pd.Series([value])).iloc[0] if value is not None else ""


def product_key(value: object) -> str:
    """A product id as stored: trimmed text, upper-case (product codes match regardless of case)."""
    return id_key(value).upper()


NUMBER_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"


def _arrow_text(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(values.astype("string"), type=pa.large_string())


def to_number(values: pd.Series) -> pd.Series:
    """Finite numbers, with anything else as NaN (the checks count those). Vectorized in Arrow.

    'nan', 'inf' in any spelling and overflowing literals such as 1e309 are not numbers here: a sum or
    a scale over them would turn every figure that touches them into inf or NaN.
    """
    if pd.api.types.is_numeric_dtype(values):
        parsed = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        text = _arrow_text(values)
        numeric = pc.if_else(
            pc.match_substring_regex(text, NUMBER_PATTERN),
            pc.utf8_trim_whitespace(text),
            pa.scalar(None, pa.large_string()),
        )
        parsed = pc.cast(numeric, pa.float64()).to_numpy(zero_copy_only=False)
    parsed = np.where(np.isfinite(parsed), parsed, np.nan)
    return pd.Series(parsed, index=values.index, dtype="float64")


def is_in(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """Whether each value occurs in `reference` as text (missing values never do)."""
    return in_known(values, known_values(reference))


def positions_in(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """Each value's first position in `reference` as text, -1 where absent or missing (a lookup without a
    Python string per value: mapping 10M ids through a pandas Series held ~600 MB of them)."""
    found = pc.index_in(_arrow_text(values), value_set=_arrow_text(reference))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def known_values(reference: pd.Series) -> pa.Array | pa.ChunkedArray:
    """`reference`'s values as Arrow text (missing ones left out): for `in_known`, made once and looked up by
    many tables (each purchase file of a run against the same customers)."""
    return _arrow_text(reference.dropna())


def in_known(values: pd.Series, known: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """`is_in(values, reference)` for `known = known_values(reference)`, at the cost of the smaller side.

    Fewer values than known ones (a day's file against every customer): the values are the set, probed by
    each known value, and the values are then looked up among the few known ones found (27,000 ids against
    1M customers: 0.03 s of CPU, where a set of the 1M took 0.25 s and a pandas index of them 0.5 s to build
    and probe). As many values or more (one large file): a set of the known values (10M against 1M: 0.7 s).
    """
    text = _arrow_text(values)
    if len(values) < len(known):
        known = known.filter(pc.is_in(known, value_set=text))
    found = pc.is_in(text, value_set=known)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _repeated(values: pd.Series) -> np.ndarray:
    """Whether each value (missing counts as one value) occurs more than once in the column."""
    encoded = pc.dictionary_encode(_arrow_text(values))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    return np.bincount(codes)[codes] > 1


def _repeated_hashes(hashes: pd.DataFrame) -> np.ndarray:
    """The rows, in order, whose first row hash occurs more than once: one sort of numbers, no text copied and
    no hash table (10M rows: ~250 MB and 1 s, where pandas' `duplicated` held ~650 MB for 5 s)."""
    first = hashes.iloc[:, 0].to_numpy()
    order = np.argsort(first)
    ordered = first[order]
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(first), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    return np.sort(order[shared])


def duplicated_rows(frame: pd.DataFrame, hashes: pd.DataFrame | None = None) -> np.ndarray:
    """True for every row that repeats an earlier row exactly (all columns).

    Rows that repeat each other share every value, so a row whose value in some column occurs nowhere
    else cannot be a repeat: each column narrows the candidates (an id column usually leaves almost
    none), and only the remaining rows are compared whole. Rows that repeat each other also share their
    row hashes (`hashes`, repeated_lines.row_hashes of `frame`, when the caller has them): the rows whose
    hashes repeat are the first candidates, so a file of distinct lines copies none of its text.
    """
    if frame.empty:
        return np.zeros(0, dtype=bool)
    candidates = np.arange(len(frame)) if hashes is None else _repeated_hashes(hashes)
    for column in frame.columns:
        if candidates.size == 0:
            break
        candidates = candidates[_repeated(frame[column].iloc[candidates])]
    repeated = np.zeros(len(frame), dtype=bool)
    if candidates.size:
        rows = frame.iloc[candidates]
        missing = pa.scalar("\x00", pa.large_string())
        columns = [pc.fill_null(_arrow_text(rows[c]), missing) for c in rows.columns]
        joined = pc.binary_join_element_wise(*columns, pa.scalar("\x1f", pa.large_string()))
        encoded = pc.dictionary_encode(joined)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        codes = pd.Series(encoded.indices.to_numpy(zero_copy_only=False))
        repeated[candidates] = codes.duplicated(keep="first").to_numpy()
    return repeated


# The form almost every export writes: read by Arrow in one pass; anything else is left to pandas.
PLAIN_TIMESTAMP = r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[ T]([01]\d|2[0-3]):[0-5]\d:[0-5]\d$"


def _plain_timestamps(text: pd.Series) -> pd.Series:
    """`YYYY-MM-DD HH:MM:SS` (or with a `T`) as naive UTC times; every other value NaT, for pandas to try.

    Arrow parses these ~10x faster than pandas and without a Python string per row; for text of exactly
    this form both agree (a test compares them). An impossible date (30 February, year 0) is left to pandas.
    """
    arrow = _arrow_text(text)
    plain = pc.fill_null(pc.match_substring_regex(arrow, PLAIN_TIMESTAMP), False)
    candidates = pc.if_else(plain, arrow, pa.scalar(None, pa.large_string()))
    try:  # one cast checks every date too
        parsed = pc.cast(candidates, pa.timestamp("us"))
    except pa.ArrowInvalid:  # some impossible date: parse value by value, leaving those out
        spaced = pc.binary_replace_slice(candidates, 10, 11, " ")
        parsed = pc.strptime(spaced, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
        # strptime rolls an impossible day over (30 February -> 2 March): such a value is not plain
        written_day = pc.cast(pc.utf8_slice_codeunits(candidates, 8, 10), pa.int64())
        parsed = pc.if_else(pc.fill_null(pc.equal(pc.day(parsed), written_day), False), parsed, None)
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index).dt.tz_localize("UTC")


NANOSECOND_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


def _fill(parsed: pd.Series, where: pd.Series, values: pd.Series) -> pd.Series:
    """`parsed` with `values` at `where`. A column with nanoseconds holds no time outside their range
    (year 1677 to 2262): such a time is unreadable there, as in pandas' own ISO 8601 parse.
    """
    if "ns" in (parsed.dt.unit, values.dt.unit):
        parsed, values = (s.where(s.between(*NANOSECOND_RANGE)).astype("datetime64[ns, UTC]") for s in (parsed, values))
    parsed.loc[where] = values
    return parsed


def _parse_any(text: pd.Series) -> pd.Series:
    """ISO 8601 by pandas, then its mixed-format parser for what ISO 8601 does not read."""
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    retry = parsed.isna() & text.notna() & (text != "")
    if retry.any():
        parsed = _fill(
            parsed, retry, pd.to_datetime(text[retry], format="mixed", errors="coerce", utc=True, dayfirst=False)
        )
    return parsed


# Rows parsed at once: the stripped text and Arrow's copies of it stay a few tens of MB (10M rows at once: ~1 GB).
TIMESTAMP_BLOCK = 1 << 20


def parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from ISO 8601 text (fast path) or other common formats; unparseable -> NaT.

    Naive times are taken as UTC; times with an offset are converted to UTC. The plain form goes
    through Arrow; the few other values through pandas, with the column's unit what pandas alone gives.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if not len(values):
        return _parse_any(values.astype("string").str.strip())
    parts, rests, others = [], [], []
    for start in range(0, len(values), TIMESTAMP_BLOCK):  # the text's copies one block at a time
        text = values.iloc[start : start + TIMESTAMP_BLOCK].astype("string").str.strip()
        parts.append(_plain_timestamps(text))
        rests.append(parts[-1].isna() & text.notna() & (text != ""))
        others.append(text[rests[-1]])
    parsed = pd.concat(parts) if len(parts) > 1 else parts[0]
    if parsed.isna().all():
        return _parse_any(values.astype("string").str.strip())
    rest, other = (pd.concat(rests), pd.concat(others)) if len(parts) > 1 else (rests[0], others[0])
    if rest.any():
        parsed = _fill(parsed, rest, _parse_any(other))
    return parsed
