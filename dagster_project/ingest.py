"""Reading the shop's exports: discover files, read them, check the contract, merge.

Whatever bytes a matching file holds, reading it ends in a frame or in a `DataInputError` that names
the file (and the row or column) and what to do; never in a parser's traceback. Messages never quote
the content of a file that is not an export: its first line may be anything, a secret included.
Raw frames keep every column as text (ids normalized), so nothing is lost before validation; in
JSON, ids and names that are not text or numbers (null, objects, lists) become missing, and the
rules count them.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from dagster_project import file_formats
from dagster_project.contract import LIMITS, PRODUCTS, TRANSACTIONS, USERS, EntitySpec, InputLimits, normalize_ids
from dagster_project.data_files import matching, open_inside, resolve_inside

Log = Callable[[str], None]
SOURCE_COLUMN = "source_file"
ROW_COLUMN = "source_row"  # 1-based data row within its file, for error messages
DELIMITERS = ",;\t|"


class DataInputError(ValueError):
    """An input file that breaks the contract; the message says where and how to fix it."""


def _noop(_: str) -> None:
    pass


def discover(data_dir: Path, spec: EntitySpec) -> list[Path]:
    """The entity's files in the data folder; a link leading outside it is refused, never followed."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataInputError(f"Data folder {data_dir} does not exist: create it or set RECOMART_DATA_DIR "
                             f"(or the 'data_dir' run config) to the folder holding the exports.")
    files = []
    for path in matching(data_dir, spec):
        target = resolve_inside(data_dir, path)
        if target is None:
            raise DataInputError(f"{path}: refused: it is a link that leads outside the data folder {data_dir}, "
                                 f"and RecoMart reads only files inside it. Copy the export into the folder "
                                 f"instead of linking to it.")
        if target.is_file():
            files.append(path)
    if not files:
        raise DataInputError(f"No {spec.name} file in {data_dir}: expected at least one file matching "
                             f"'{spec.pattern}' (or '{spec.patterns[1]}').")
    return files


def _how(spec: EntitySpec) -> str:
    if spec.file_format == "JSON":
        return "Export the products as a JSON array of objects (or JSON Lines) under that name"
    return f"Export the {spec.name} as CSV (UTF-8) under that name, e.g. 'Save as CSV UTF-8' in Excel"


def _open(path: Path):
    try:
        return open_inside(path.parent, path)
    except OSError as exc:
        raise DataInputError(f"{path}: the file cannot be opened ({exc.strerror or type(exc).__name__}). "
                             f"Check that it exists and that the pipeline may read it.") from None


def _read(path: Path, spec: EntitySpec, size: int | None = None) -> tuple[bytes, str | None]:
    """The first `size` bytes of the content (all when None), decompressed, and the compression found.

    Refuses known binary formats, naming what the file looks like.
    """
    with _open(path) as raw:
        kind = file_formats.compression(raw.read(16))
        raw.seek(0)
        try:
            with file_formats.open_decompressed(raw, kind) as stream:
                data = stream.read() if size is None else stream.read(size)
        except file_formats.DECOMPRESSION_ERRORS:
            raise DataInputError(f"{path}: the file is a damaged {kind} archive (or not one): compress the "
                                 f"export again, or put it in the folder uncompressed.") from None
    try:
        file_formats.refuse_binary(data[:4096])
    except file_formats.NotAnExport as exc:
        zipped = " (gzip-compressed exports are read as they are, e.g. " \
                 f"'{spec.patterns[1].replace('*', '1')}')" if "zip" in str(exc) else ""
        raise DataInputError(f"{path}: this looks like {exc}, not a {spec.file_format} export. "
                             f"{_how(spec)}{zipped}.") from None
    return data, kind


def _refuse_binary_text(path: Path, spec: EntitySpec, text: str) -> None:
    if file_formats.is_binary(text):
        raise DataInputError(f"{path}: this is not a text file (it holds binary data), so it is not a "
                             f"{spec.file_format} export. {_how(spec)}.")


def _squash(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _closest(wanted: str, columns: Iterable[str]) -> str | None:
    """The header that looks like a misspelling of `wanted` (case, spaces, dashes ignored)."""
    squashed = {_squash(c): c for c in columns if len(str(c)) <= 100}
    if _squash(wanted) in squashed:
        return squashed[_squash(wanted)]
    close = difflib.get_close_matches(_squash(wanted), list(squashed), n=1, cutoff=0.75)
    return squashed[close[0]] if close else None


def _check_header(names: list[str], spec: EntitySpec, path: Path, limits: InputLimits) -> None:
    """Column count, required columns and duplicate names, before any row is read.

    Column names are quoted only when the header is recognisably this export (an expected column,
    or a close misspelling of one): otherwise the "header" may be any first line, a secret included.
    """
    header, has = ("the header", "the header has") if spec.file_format == "CSV" else ("the objects", "the objects have")
    if len(names) > limits.max_columns:
        raise DataInputError(f"{path}: {has} more than {limits.max_columns:,} columns ({len(names):,}); a "
                             f"{spec.name} export has a handful. Check that this is the {spec.name} export and "
                             f"that the first line is its header.")
    missing = [c for c in spec.required if c not in names]
    if missing:
        hints = [f"'{found}' for '{want}'" for want in missing if (found := _closest(want, names))]
        if hints or set(names) & set(spec.columns):
            shown = names if len(names) <= 50 else [*names[:50], f"... {len(names) - 50} more"]
            raise DataInputError(
                f"{path}: required column(s) {', '.join(repr(c) for c in missing)} missing; found columns "
                f"{shown}." + (f" Did you mean {', '.join(hints)}?" if hints else "") +
                f" Rename or add the column(s) so {header} {'has' if header == 'the header' else 'have'} "
                f"{list(spec.required)}.")
        raise DataInputError(f"{path}: {has} {len(names):,} column(s) and none of them is one RecoMart expects "
                             f"({', '.join(spec.required)} required). Check that this is the {spec.name} export"
                             + (" and that its first line is the header." if spec.file_format == "CSV" else "."))
    duplicated = [name for name, count in Counter(names).items() if count > 1 and name]
    if duplicated:
        name = duplicated[0]
        positions = [str(i + 1) for i, n in enumerate(names) if n == name]
        raise DataInputError(f"{path}: the column '{name}' appears {len(positions)} times in {header} (columns "
                             f"{', '.join(positions)}); which one holds the data is ambiguous. Remove or rename "
                             f"the extra column(s) so each name appears once.")


def _clean_names(names: Iterable[object]) -> list[str]:
    return [str(c).strip().lstrip("\ufeff").strip() for c in names]


def _check_fields(frame: pd.DataFrame, path: Path, limits: InputLimits) -> None:
    """No field over the limit: such a field is a broken export (typically a quote never closed)."""
    for column in frame.columns:
        lengths = frame[column].str.len()
        longest = lengths.max()
        if pd.notna(longest) and longest > limits.max_field_chars:
            row = int(lengths.to_numpy(dtype="float64", na_value=0).argmax()) + 1
            raise DataInputError(f"{path}: row {row}, column '{column}': the value is {int(longest):,} characters "
                                 f"long, over the limit of {limits.max_field_chars:,}. No real export has such a "
                                 f"field: usually a quote that is never closed swallows the lines after it. Fix "
                                 f"the file or export it again.")


def _finish(frame: pd.DataFrame, spec: EntitySpec, path: Path) -> pd.DataFrame:
    if frame.empty:
        raise DataInputError(f"{path}: the file has a header but no data rows.")
    for column in spec.id_columns:
        if column in frame.columns:
            frame[column] = normalize_ids(frame[column])
            if column in spec.case_insensitive:
                frame[column] = frame[column].str.upper()
    return frame


def _delimiter(line: str) -> str:
    """The candidate delimiter that occurs most often outside quotes in the header (comma on a tie)."""
    counts, quoted = Counter(), False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in DELIMITERS:
            counts[ch] += 1
    return max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))


def _parse_problem(exc: Exception) -> str:
    """What went wrong, from the parser's message, without quoting any of the file's content."""
    text = str(exc)
    if found := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        return f"line {found[2]} has {found[3]} fields, the header {found[1]}"
    if found := re.search(r"EOF inside string starting at row (\d+)", text):
        return f"a quoted field starting on row {found[1]} is never closed"
    if "EOF" in text:
        return "the file ends inside a quoted field"
    return "it is not well-formed CSV"


def read_csv(path: Path, spec: EntitySpec, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read a CSV export as text columns; compression, encoding and delimiter are detected."""
    path = Path(path)
    head, kind = _read(path, spec, limits.max_header_bytes + 1)
    encoding = file_formats.encoding(head)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise DataInputError(f"{path}: the file is empty; expected a header row with {list(spec.required)}.")
    _refuse_binary_text(path, spec, text)
    text = re.sub(r"^(?:[ \t]*(?:\r\n|\r|\n))+", "", text)  # the parser skips blank lines before the header
    lines = re.split(r"\r\n|\r|\n", text, maxsplit=1)
    if len(lines) == 1 and len(head) > limits.max_header_bytes:
        size = limits.max_header_bytes
        raise DataInputError(f"{path}: the first line is longer than "
                             f"{f'{size // 1024:,} KB' if size >= 1024 else f'{size} bytes'}, far "
                             f"more than a header row. Check that this is the {spec.name} export and that its "
                             f"lines end with line breaks.")
    delimiter = _delimiter(lines[0])
    try:
        names = next(csv.reader([lines[0]], delimiter=delimiter), [])
    except csv.Error:  # a header field over the csv module's own limit (128 KB)
        names = ["?" * (limits.max_field_chars + 1)]
    names = _clean_names(names)
    _check_header(names, spec, path, limits)
    if any(len(n) > limits.max_field_chars for n in names):
        raise DataInputError(f"{path}: a column name in the header is over {limits.max_field_chars:,} characters "
                             f"long. Check that the first line is the header.")
    options = {"dtype": "string", "sep": delimiter, "keep_default_na": False, "na_values": [""],
               "skipinitialspace": True}
    try:
        try:
            with _open(path) as raw, file_formats.open_decompressed(raw, kind) as stream:
                frame = pd.read_csv(stream, encoding=encoding, **options)
        except UnicodeError:  # a byte past the sampled head that the detected encoding cannot decode
            data, _ = _read(path, spec)
            text = file_formats.decode(data)
            _refuse_binary_text(path, spec, text)
            frame = pd.read_csv(io.StringIO(text), **options)
    except DataInputError:
        raise
    except (pd.errors.ParserError, csv.Error, ValueError, OverflowError) as exc:
        raise DataInputError(f"{path}: the CSV cannot be parsed ({_parse_problem(exc)}). Check that every row "
                             f"has as many fields as the header and that quoted fields are closed.") from None
    except file_formats.DECOMPRESSION_ERRORS as exc:
        if kind is None:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DataInputError(f"{path}: the file cannot be read ({reason}).") from None
        raise DataInputError(f"{path}: the file is a damaged {kind} archive: compress the export again, or put it "
                             f"in the folder uncompressed.") from None
    frame.columns = _clean_names(frame.columns)
    _check_header(list(frame.columns), spec, path, limits)
    _check_fields(frame, path, limits)
    return _finish(frame, spec, path)


class _JSONObject(dict):
    """A JSON object that remembers the keys it had more than once (json keeps only the last)."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, object]]) -> _JSONObject:
    obj = _JSONObject(pairs)
    if len(obj) < len(pairs):
        obj.duplicates = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return obj


def _too_deep(path: Path, limits: InputLimits, where: str = "") -> DataInputError:
    return DataInputError(f"{path}: {where}the JSON is nested more than {limits.max_json_depth} levels deep; an "
                          f"export is a list of flat objects. Export the products again.")


def _loads(text: str, path: Path, limits: InputLimits, where: str = ""):
    try:
        return json.loads(text, object_pairs_hook=_object)
    except RecursionError:
        raise _too_deep(path, limits, where) from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # e.g. an integer with more digits than Python converts
        raise DataInputError(f"{path}: {where}a number in the JSON has too many digits to be a value. Fix the "
                             f"file or export it again.") from None


def _depth(value: object, limit: int) -> bool:
    """Whether a JSON value nests deeper than `limit` (without recursion: the value may be very deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _cell(value: object, text_only: bool, path: Path, item: int, key: str, limits: InputLimits) -> str | None:
    """One JSON value as text. Ids and names must be text or finite numbers, else they are missing."""
    if isinstance(value, bool):
        return None if text_only else ("true" if value else "false")
    if isinstance(value, float):  # NaN, Infinity and 1e309 parse as floats: 'nan'/'inf', which the rules reject
        return None if text_only and not math.isfinite(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if text_only:  # an object or a list
        return None
    if _depth(value, limits.max_json_depth - 2):
        raise _too_deep(path, limits, f"item {item}, field '{key}': ")
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > limits.max_field_chars:
        raise DataInputError(f"{path}: item {item}, field '{key}': the value is {len(text):,} characters long, over "
                             f"the limit of {limits.max_field_chars:,}. Fix the file or export it again.")
    return text


def _frame_from_records(records: list, spec: EntitySpec, path: Path, limits: InputLimits) -> pd.DataFrame:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
        if len(keys) > limits.max_columns:
            break
    names = _clean_names(keys)
    _check_header(names, spec, path, limits)
    for number, record in enumerate(records, start=1):
        if record.duplicates:
            raise DataInputError(f"{path}: item {number} has the field '{record.duplicates[0]}' more than once; which "
                                 f"value holds is ambiguous. Remove the extra field so each name appears once.")
        for key, value in record.items():
            if isinstance(value, str):
                if len(value) > limits.max_field_chars:
                    raise DataInputError(f"{path}: item {number}, field '{key}': the value is {len(value):,} "
                                         f"characters long, over the limit of {limits.max_field_chars:,}. No real "
                                         f"export has such a field. Fix the file or export it again.")
            elif value is not None:
                record[key] = _cell(value, key.strip() in spec.text_columns, path, number, key, limits)
    frame = pd.DataFrame.from_records(records, columns=list(keys))
    frame.columns = names
    return frame.astype("string")


def read_json_records(path: Path, spec: EntitySpec, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read a JSON array of objects, or JSON Lines (one object per line); gzip, bzip2 or xz allowed."""
    path = Path(path)
    data, _ = _read(path, spec)
    text = file_formats.decode(data).strip().lstrip("\ufeff")
    if not text:
        raise DataInputError(f"{path}: the file is empty; expected a JSON array of {spec.name} objects.")
    _refuse_binary_text(path, spec, text[:4096])
    try:
        records = _loads(text, path, limits)
    except json.JSONDecodeError as exc:
        records = _read_json_lines(path, text, exc, limits)
    if isinstance(records, dict):
        wrapped = [k for k, v in records.items() if isinstance(v, list)]
        if wrapped and not set(spec.required) & set(records):
            inner = records[wrapped[0]]
            looks_like_export = any(isinstance(r, dict) and set(r) & set(spec.columns) for r in inner[:100])
            where = f"under '{wrapped[0]}'" if looks_like_export else "under one of its keys"
            raise DataInputError(f"{path}: expected a JSON array of {spec.name} objects, found an object with the "
                                 f"list {where}. Export the array itself (or one object per line).")
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), 0) if isinstance(records, list) else 0
        raise DataInputError(f"{path}: expected a JSON array of objects (or one object per line); "
                             f"item {bad + 1} is not an object.")
    if not records:
        raise DataInputError(f"{path}: the JSON array is empty.")
    frame = _frame_from_records(records, spec, path, limits)
    return _finish(frame, spec, path)


def _read_json_lines(path: Path, text: str, first_error: json.JSONDecodeError, limits: InputLimits) -> list:
    lines = re.split(r"\r\n|\r|\n", text)  # not splitlines(): JSON strings may hold U+2028 and other breaks
    if len(lines) < 2 or not lines[0].lstrip().startswith("{"):
        raise DataInputError(f"{path}: invalid JSON at line {first_error.lineno}, column {first_error.colno}: "
                             f"{first_error.msg}. Fix the file or export it again.") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_loads(line, path, limits, f"line {number}: "))
        except json.JSONDecodeError as exc:
            raise DataInputError(f"{path}: invalid JSON Lines record at line {number}, column {exc.colno}: "
                                 f"{exc.msg}.") from None
    return records


def read_entity(data_dir: Path, spec: EntitySpec, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read and merge every file of one entity; each row records its source file."""
    files = discover(data_dir, spec)
    log(f"Discovered {len(files)} {spec.name.rstrip('s')} data file{'s' if len(files) != 1 else ''}")
    reader = read_json_records if spec.file_format == "JSON" else read_csv
    frames = []
    for path in files:
        frame = reader(path, spec, limits)
        frame[SOURCE_COLUMN] = path.name
        frame[ROW_COLUMN] = range(1, len(frame) + 1)
        log(f"Read {len(frame)} records from {path.name}")
        frames.append(frame)
    merged = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    log(f"Merged dataset contains {len(merged)} records")
    return merged


def read_users(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, USERS, log, limits)


def read_products(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, PRODUCTS, log, limits)


def read_transactions(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, TRANSACTIONS, log, limits)
