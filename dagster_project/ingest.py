"""Reading the shop's exports: discover files, read them, check the contract, merge.

Every problem becomes a `DataInputError` naming the file (and the row or column) and what to do.
Raw frames keep every column as text (ids normalized), so nothing is lost before validation.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dagster_project.contract import PRODUCTS, TRANSACTIONS, USERS, EntitySpec, normalize_ids

Log = Callable[[str], None]
SOURCE_COLUMN = "source_file"
ROW_COLUMN = "source_row"  # 1-based data row within its file, for error messages


class DataInputError(ValueError):
    """An input file that breaks the contract; the message says where and how to fix it."""


def _noop(_: str) -> None:
    pass


def discover(data_dir: Path, spec: EntitySpec) -> list[Path]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataInputError(f"Data folder {data_dir} does not exist: create it or set RECOMART_DATA_DIR "
                             f"(or the 'data_dir' run config) to the folder holding the exports.")
    files = sorted(p for p in data_dir.glob(spec.pattern) if p.is_file())
    if not files:
        raise DataInputError(f"No {spec.name} file in {data_dir}: expected at least one file matching "
                             f"'{spec.pattern}'.")
    return files


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte string")


def _check_columns(frame: pd.DataFrame, spec: EntitySpec, path: Path) -> pd.DataFrame:
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        hints = [f"'{found}' for '{want}'" for want in missing if (found := _closest(want, frame.columns))]
        raise DataInputError(
            f"{path}: required column(s) {', '.join(repr(c) for c in missing)} missing; found columns "
            f"{list(frame.columns)}." + (f" Did you mean {', '.join(hints)}?" if hints else "") +
            f" Rename or add the column(s) so the header has {list(spec.required)}.")
    if frame.empty:
        raise DataInputError(f"{path}: the file has a header but no data rows.")
    for column in spec.id_columns:
        if column in frame.columns:
            frame[column] = normalize_ids(frame[column])
            if column in spec.case_insensitive:
                frame[column] = frame[column].str.upper()
    return frame


def _closest(wanted: str, columns) -> str | None:
    """The header that looks like a misspelling of `wanted` (case, spaces, dashes ignored)."""
    def squash(name: str) -> str:
        return "".join(ch for ch in str(name).lower() if ch.isalnum())
    squashed = {squash(c): c for c in columns}
    if squash(wanted) in squashed:
        return squashed[squash(wanted)]
    close = difflib.get_close_matches(squash(wanted), list(squashed), n=1, cutoff=0.75)
    return squashed[close[0]] if close else None


def read_csv(path: Path, spec: EntitySpec) -> pd.DataFrame:
    """Read a CSV export as text columns; the delimiter is sniffed, the encoding detected."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataInputError(f"{path}: the file is empty; expected a header row with {list(spec.required)}.")
    head = path.open("rb").read(64 * 1024)
    try:
        head.decode("utf-8")
        encoding = "utf-8-sig"
    except UnicodeDecodeError as exc:
        encoding = "utf-8-sig" if exc.start > len(head) - 4 else "cp1252"
    sample = head.decode(encoding, errors="ignore")
    try:
        delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(path, dtype="string", sep=delimiter, encoding=encoding, keep_default_na=False,
                            na_values=[""], skipinitialspace=True)
    except UnicodeDecodeError:
        frame = pd.read_csv(io.StringIO(_decode(path)), dtype="string", sep=delimiter, keep_default_na=False,
                            na_values=[""])
    except pd.errors.ParserError as exc:
        raise DataInputError(f"{path}: the CSV cannot be parsed ({exc}). Check that every row has as many "
                             f"fields as the header and that quoted fields are closed.") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataInputError(f"{path}: the file has no header row; expected {list(spec.required)}.") from exc
    return _check_columns(frame, spec, path)


def read_json_records(path: Path, spec: EntitySpec) -> pd.DataFrame:
    """Read a JSON array of objects, or JSON Lines (one object per line)."""
    path = Path(path)
    text = _decode(path).strip()
    if not text:
        raise DataInputError(f"{path}: the file is empty; expected a JSON array of {spec.name} objects.")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        records = _read_json_lines(path, text, exc)
    if isinstance(records, dict):
        wrapped = [k for k, v in records.items() if isinstance(v, list)]
        if wrapped and not set(spec.required) & set(records):
            raise DataInputError(f"{path}: expected a JSON array of {spec.name} objects, found an object with the "
                                 f"list under '{wrapped[0]}'. Export the array itself (or one object per line).")
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), 0) if isinstance(records, list) else 0
        raise DataInputError(f"{path}: expected a JSON array of objects (or one object per line); "
                             f"item {bad + 1} is not an object.")
    if not records:
        raise DataInputError(f"{path}: the JSON array is empty.")
    frame = pd.DataFrame.from_records(records)
    frame = frame.astype({c: "string" for c in frame.columns})
    return _check_columns(frame, spec, path)


def _read_json_lines(path: Path, text: str, first_error: json.JSONDecodeError) -> list:
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].lstrip().startswith("{"):
        raise DataInputError(f"{path}: invalid JSON at line {first_error.lineno}, column {first_error.colno}: "
                             f"{first_error.msg}. Fix the file or export it again.") from first_error
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataInputError(f"{path}: invalid JSON Lines record at line {number}, column {exc.colno}: "
                                 f"{exc.msg}.") from exc
    return records


def read_entity(data_dir: Path, spec: EntitySpec, log: Log = _noop) -> pd.DataFrame:
    """Read and merge every file of one entity; each row records its source file."""
    files = discover(data_dir, spec)
    log(f"Discovered {len(files)} {spec.name.rstrip('s')} data file{'s' if len(files) != 1 else ''}")
    reader = read_json_records if spec is PRODUCTS else read_csv
    frames = []
    for path in files:
        frame = reader(path, spec)
        frame[SOURCE_COLUMN] = path.name
        frame[ROW_COLUMN] = range(1, len(frame) + 1)
        log(f"Read {len(frame)} records from {path.name}")
        frames.append(frame)
    merged = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    log(f"Merged dataset contains {len(merged)} records")
    return merged


def read_users(data_dir: Path, log: Log = _noop) -> pd.DataFrame:
    return read_entity(data_dir, USERS, log)


def read_products(data_dir: Path, log: Log = _noop) -> pd.DataFrame:
    return read_entity(data_dir, PRODUCTS, log)


def read_transactions(data_dir: Path, log: Log = _noop) -> pd.DataFrame:
    return read_entity(data_dir, TRANSACTIONS, log)
