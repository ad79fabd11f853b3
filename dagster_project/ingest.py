"""Reading the shop's exports: discover files, read them, check the contract, merge.

Whatever bytes a matching file holds, reading it ends in a frame or in a `DataInputError` that names
the file (and the row or column) and what to do; never in a parser's traceback (see `export_checks`
for what every reader checks, `json_exports` for JSON). Raw frames keep every column as text (ids
normalized), so nothing is lost before validation.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from pandas.api.types import union_categoricals

from dagster_project import file_formats
from dagster_project.contract import LIMITS, PRODUCTS, TRANSACTIONS, USERS, EntitySpec, InputLimits
from dagster_project.data_files import matching, resolve_inside
from dagster_project.export_checks import (
    DataInputError,
    check_fields,
    check_header,
    clean_names,
    finish,
    open_export,
    read_content,
    refuse_binary_text,
    too_large,
)
from dagster_project.json_exports import read_json_records

__all__ = [
    "DataInputError",
    "ROW_COLUMN",
    "SOURCE_COLUMN",
    "discover",
    "read_csv",
    "merge",
    "read_entity",
    "read_file",
    "read_json_records",
    "read_products",
    "read_transactions",
    "read_users",
]

Log = Callable[[str], None]
SOURCE_COLUMN = "source_file"
ROW_COLUMN = "source_row"  # 1-based data row within its file, for error messages
DELIMITERS = ",;\t|"


def _noop(_: str) -> None:
    pass


def discover(data_dir: Path, spec: EntitySpec) -> list[Path]:
    """The entity's files in the data folder; a link leading outside it is refused, never followed."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataInputError(
            f"Data folder {data_dir} does not exist: create it or set RECOMART_DATA_DIR "
            f"(or the 'data_dir' run config) to the folder holding the exports."
        )
    files = []
    for path in matching(data_dir, spec):
        target = resolve_inside(data_dir, path)
        if target is None:
            raise DataInputError(
                f"{path}: refused: it is a link that leads outside the data folder {data_dir}, "
                f"and RecoMart reads only files inside it. Copy the export into the folder "
                f"instead of linking to it."
            )
        if target.is_file():
            files.append(path)
    if not files:
        raise DataInputError(
            f"No {spec.name} file in {data_dir}: expected at least one file matching "
            f"'{spec.pattern}' (or '{spec.patterns[1]}')."
        )
    return files


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


def _first_data_line(text: str) -> int:
    """The 1-based line number of the first data row in the file's head: the first non-blank line after the header."""
    header_seen = False
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        if line.strip():
            if header_seen:
                return number
            header_seen = True
    return 2


def _unparsable(path: Path, problem: str) -> DataInputError:
    return DataInputError(
        f"{path}: the CSV cannot be parsed ({problem}). Check that every row "
        f"has as many fields as the header and that quoted fields are closed."
    )


# a blank line that is a carriage return alone, followed by another line (the file's start is a line start)
LONE_CR_LINE = re.compile(rb"[\r\n]\r[^\n]")


def _scan(stream: BinaryIO, chunk: int = 16 << 20) -> tuple[int, bool]:
    """How many double quotes the bytes hold, and whether a blank line is a lone carriage return. In chunks."""
    quotes, lone_cr, carry = 0, False, b"\n"
    while data := stream.read(chunk):
        quotes += data.count(b'"')
        if not lone_cr:
            # the chunk's first bytes with the last two of the one before (no copy of the whole chunk)
            seam = carry + data[:2]
            lone_cr = bool(LONE_CR_LINE.search(seam)) or (
                (b"\r\r" in data or b"\n\r" in data) and bool(LONE_CR_LINE.search(data))
            )
        carry = (carry + data)[-2:] if len(data) < 2 else data[-2:]
    return quotes, lone_cr


def _any(flags: pa.ChunkedArray) -> bool:
    return bool(pc.any(flags).as_py())


def _starts_blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each field starts with a space or a tab (plain prefix tests: several times a regex's speed)."""
    return pc.or_(pc.starts_with(column, " "), pc.starts_with(column, "\t"))


def _read_csv_arrow(
    path: Path, kind: str | None, delimiter: str, header: list[str], quotes: int
) -> pd.DataFrame | None:
    """The common case fast: UTF-8 text parsed by Arrow's multi-threaded reader into text columns.

    It gives what `pd.read_csv` with the reader's options gives, or None so the caller reads the file
    that way: on anything Arrow does not parse (ragged rows, bytes that are not UTF-8), on what Arrow
    reads otherwise (a quote never closed — an odd count of `quotes`, as `_scan` found them — a line
    break inside a field, empty or space-led header names, fields or lines that start with a space or a
    tab, which `skipinitialspace` and pandas' blank-line rule treat their own way), the slower reader
    decides, and its messages are the ones users see.
    """
    if quotes % 2:  # a quote never closed: Arrow reads to the end, pandas names the row
        return None
    read = pa_csv.ReadOptions(use_threads=True, block_size=8 << 20)
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.large_string() for name in header},  # what pandas' Arrow strings hold: no cast
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        with open_export(path) as raw, file_formats.open_decompressed(raw, kind) as stream:
            table = pa_csv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    except (
        pa.ArrowException,
        OSError,
        ValueError,
        EOFError,
        file_formats.ExpandsTooMuch,
        *file_formats.DECOMPRESSION_ERRORS,
    ):
        return None
    # pandas names empty header fields "Unnamed: N", skips initial spaces in the header too, and skips
    # lines of spaces and tabs: the header must be the one the contract checked, and no field may start
    # with a space or a tab or hold a line break
    if table.column_names != header or any(not name.strip() or name[:1] in " \t" for name in header):
        return None
    for column in table.columns:
        if column.type != pa.large_string() or _any(_starts_blank(column)):
            return None
        if quotes and _any(pc.or_(pc.match_substring(column, "\n"), pc.match_substring(column, "\r"))):
            return None  # a line break inside a quoted field (without quotes no field holds one)
    return table.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)


def _read_decoded(path: Path, spec: EntitySpec, options: dict, one_line_end: bool = False) -> pd.DataFrame:
    """The whole file decoded in memory (its encoding found on all of it), then parsed by pandas."""
    data, _ = read_content(path, spec)
    text = file_formats.decode(data)
    refuse_binary_text(path, spec, text)
    if one_line_end:
        text = re.sub(r"\r\n?", "\n", text)
    return pd.read_csv(io.StringIO(text), **options)


def read_csv(path: Path, spec: EntitySpec, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read a CSV export as text columns; compression, encoding and delimiter are detected."""
    path = Path(path)
    head, kind = read_content(path, spec, limits.max_header_bytes + 1)
    encoding = file_formats.encoding(head)
    text = head_text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise DataInputError(f"{path}: the file is empty; expected a header row with {list(spec.required)}.")
    refuse_binary_text(path, spec, text)
    text = re.sub(r"^(?:[ \t]*(?:\r\n|\r|\n))+", "", text)  # the parser skips blank lines before the header
    lines = re.split(r"\r\n|\r|\n", text, maxsplit=1)
    if len(lines) == 1 and len(head) > limits.max_header_bytes:
        size = limits.max_header_bytes
        raise DataInputError(
            f"{path}: the first line is longer than "
            f"{f'{size // 1024:,} KB' if size >= 1024 else f'{size} bytes'}, far "
            f"more than a header row. Check that this is the {spec.name} export and that its "
            f"lines end with line breaks."
        )
    delimiter = _delimiter(lines[0])
    try:
        header = next(csv.reader([lines[0]], delimiter=delimiter), [])
    except csv.Error:  # a header field over the csv module's own limit (128 KB)
        header = ["?" * (limits.max_field_chars + 1)]
    names = clean_names(header)
    check_header(names, spec, path, limits)
    if any(len(n) > limits.max_field_chars for n in names):
        raise DataInputError(
            f"{path}: a column name in the header is over {limits.max_field_chars:,} characters "
            f"long. Check that the first line is the header."
        )
    options = {
        "dtype": "string",
        "sep": delimiter,
        "keep_default_na": False,
        "na_values": [""],
        "skipinitialspace": True,
    }
    try:
        try:
            with open_export(path) as raw, file_formats.open_decompressed(raw, kind) as stream:
                quotes, lone_cr = _scan(stream)
            if lone_cr:  # after such a line pandas drops the next line's leading delimiter: one line end
                frame = _read_decoded(path, spec, options, one_line_end=True)
            else:
                frame = _read_csv_arrow(path, kind, delimiter, header, quotes) if encoding == "utf-8-sig" else None
            if frame is None:
                with open_export(path) as raw, file_formats.open_decompressed(raw, kind) as stream:
                    frame = pd.read_csv(stream, encoding=encoding, **options)
        except UnicodeError:  # a byte past the sampled head that the detected encoding cannot decode
            frame = _read_decoded(path, spec, options)
    except DataInputError:
        raise
    except file_formats.ExpandsTooMuch as exc:
        raise DataInputError(too_large(path, kind, exc)) from None
    except (pd.errors.ParserError, csv.Error, ValueError, OverflowError) as exc:
        raise _unparsable(path, _parse_problem(exc)) from None
    except file_formats.DECOMPRESSION_ERRORS as exc:
        if kind is None:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DataInputError(f"{path}: the file cannot be read ({reason}).") from None
        raise DataInputError(
            f"{path}: the file is a damaged {kind} archive: compress the export again, or put it "
            f"in the folder uncompressed."
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # The first data row has more fields than the header: pandas takes the extra leading fields as row
        # labels and shifts every column by as many (user ids under transaction_id...). Refused like a ragged
        # row anywhere else in the file, with its line number.
        fields, named = len(frame.columns) + frame.index.nlevels, len(frame.columns)
        problem = f"line {_first_data_line(head_text)} has {fields} fields, the header {named}"
        raise _unparsable(path, problem)
    frame.columns = clean_names(frame.columns)
    check_header(list(frame.columns), spec, path, limits)
    check_fields(frame, path, limits)
    return finish(frame, spec, path)


def read_file(path: Path, spec: EntitySpec, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read one export of an entity; each row records its source file and row (for error messages)."""
    reader = read_json_records if spec.file_format == "JSON" else read_csv
    frame = reader(path, spec, limits)
    # one small code per row, not the file's name repeated on every row
    frame[SOURCE_COLUMN] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), [Path(path).name])
    frame[ROW_COLUMN] = range(1, len(frame) + 1)
    return frame


def merge(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from an entity's files (read with `read_file`), in file order."""
    if len(frames) == 1:
        return frames[0]
    columns = pd.concat([frame.head(0) for frame in frames]).columns
    merged = pd.concat([frame.drop(columns=SOURCE_COLUMN) for frame in frames], ignore_index=True)
    # concatenated as they are, categories of different files would become a column of text
    sources = union_categoricals([frame[SOURCE_COLUMN] for frame in frames])
    merged.insert(columns.get_loc(SOURCE_COLUMN), SOURCE_COLUMN, sources)
    return merged


def read_entity(data_dir: Path, spec: EntitySpec, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read and merge every file of one entity; each row records its source file."""
    files = discover(data_dir, spec)
    log(f"Discovered {len(files)} {spec.name.rstrip('s')} data file{'s' if len(files) != 1 else ''}")
    frames = []
    for path in files:
        frame = read_file(path, spec, limits)
        log(f"Read {len(frame)} records from {path.name}")
        frames.append(frame)
    merged = merge(frames)
    log(f"Merged dataset contains {len(merged)} records")
    return merged


def read_users(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, USERS, log, limits)


def read_products(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, PRODUCTS, log, limits)


def read_transactions(data_dir: Path, log: Log = _noop, limits: InputLimits = LIMITS) -> pd.DataFrame:
    return read_entity(data_dir, TRANSACTIONS, log, limits)
