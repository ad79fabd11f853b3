"""What every reader checks, whatever the format: the file is a readable text export, its columns are
the contract's (counted, required, unique), no field is absurdly long, and ids are normalized.

Every problem becomes a `DataInputError` naming the file (and the row or column) and what to do.
Messages never quote the content of a file that is not an export: its first line may be anything, a
secret included, so column names are listed only when the header is recognisably this export.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project import file_formats
from dagster_project.contract import EntitySpec, InputLimits, normalize_ids
from dagster_project.data_files import open_inside


class DataInputError(ValueError):
    """An input file that breaks the contract; the message says where and how to fix it."""


def how_to_export(spec: EntitySpec) -> str:
    """The fix for a file that is not an export of the expected format."""
    if spec.file_format == "JSON":
        return "Export the products as a JSON array of objects (or JSON Lines) under that name"
    return f"Export the {spec.name} as CSV (UTF-8) under that name, e.g. 'Save as CSV UTF-8' in Excel"


def open_export(path: Path) -> BinaryIO:
    """The file, opened only when it lies inside its folder (a link swapped in meanwhile is refused)."""
    try:
        return open_inside(path.parent, path)
    except OSError as exc:
        raise DataInputError(
            f"{path}: the file cannot be opened ({exc.strerror or type(exc).__name__}). "
            f"Check that it exists and that the pipeline may read it."
        ) from None


def too_large(path: Path, kind: str | None, exc: Exception) -> str:
    return (
        f"{path}: refused: this {kind} file {exc}, far more than any export of its size (a damaged or "
        f"crafted archive). Compress the export again, or put it in the folder uncompressed."
    )


def read_content(path: Path, spec: EntitySpec, size: int | None = None) -> tuple[bytes, str | None]:
    """The first `size` bytes of the content (all when None), decompressed, and the compression found.

    Refuses known binary formats, naming what the file looks like.
    """
    with open_export(path) as raw:
        kind = file_formats.compression(raw.read(16))
        raw.seek(0)
        try:
            with file_formats.open_decompressed(raw, kind) as stream:
                data = stream.read() if size is None else stream.read(size)
        except file_formats.ExpandsTooMuch as exc:
            raise DataInputError(too_large(path, kind, exc)) from None
        except file_formats.DECOMPRESSION_ERRORS:
            raise DataInputError(
                f"{path}: the file is a damaged {kind} archive (or not one): compress the "
                f"export again, or put it in the folder uncompressed."
            ) from None
    try:
        file_formats.refuse_binary(data[:4096])
    except file_formats.NotAnExport as exc:
        zipped = (
            f" (gzip-compressed exports are read as they are, e.g. '{spec.patterns[1].replace('*', '1')}')"
            if "zip" in str(exc)
            else ""
        )
        raise DataInputError(
            f"{path}: this looks like {exc}, not a {spec.file_format} export. {how_to_export(spec)}{zipped}."
        ) from None
    return data, kind


def refuse_binary_text(path: Path, spec: EntitySpec, text: str) -> None:
    """NUL characters never occur in a text export."""
    if file_formats.is_binary(text):
        raise DataInputError(
            f"{path}: this is not a text file (it holds binary data), so it is not a "
            f"{spec.file_format} export. {how_to_export(spec)}."
        )


def _squash(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def closest(wanted: str, columns: Iterable[str]) -> str | None:
    """The header that looks like a misspelling of `wanted` (case, spaces, dashes ignored)."""
    squashed = {_squash(c): c for c in columns if len(str(c)) <= 100}
    if _squash(wanted) in squashed:
        return squashed[_squash(wanted)]
    close = difflib.get_close_matches(_squash(wanted), list(squashed), n=1, cutoff=0.75)
    return squashed[close[0]] if close else None


def check_header(names: list[str], spec: EntitySpec, path: Path, limits: InputLimits) -> None:
    """Column count, required columns and duplicate names, before any row is read.

    Column names are quoted only when the header is recognisably this export (an expected column,
    or a close misspelling of one): otherwise the "header" may be any first line, a secret included.
    """
    header, has = ("the header", "the header has") if spec.file_format == "CSV" else ("the objects", "the objects have")
    if len(names) > limits.max_columns:
        raise DataInputError(
            f"{path}: {has} more than {limits.max_columns:,} columns ({len(names):,}); a "
            f"{spec.name} export has a handful. Check that this is the {spec.name} export and "
            f"that the first line is its header."
        )
    missing = [c for c in spec.required if c not in names]
    if missing:
        hints = [f"'{found}' for '{want}'" for want in missing if (found := closest(want, names))]
        if hints or set(names) & set(spec.columns):
            # Only names that are, or look like, this export's columns are quoted: any other field of
            # the first line may be anything (a secret included), so it is counted, not shown.
            known = [n for n in names if n in spec.columns or any(closest(c, [n]) for c in spec.columns)]
            others = len(names) - len(known)
            shown = f"{known}" + (f" and {others} other(s)" if others else "")
            raise DataInputError(
                f"{path}: required column(s) {', '.join(repr(c) for c in missing)} missing; found columns "
                f"{shown}."
                + (f" Did you mean {', '.join(hints)}?" if hints else "")
                + f" Rename or add the column(s) so {header} {'has' if header == 'the header' else 'have'} "
                f"{list(spec.required)}."
            )
        raise DataInputError(
            f"{path}: {has} {len(names):,} column(s) and none of them is one RecoMart expects "
            f"({', '.join(spec.required)} required). Check that this is the {spec.name} export"
            + (" and that its first line is the header." if spec.file_format == "CSV" else ".")
        )
    duplicated = [name for name, count in Counter(names).items() if count > 1 and name]
    if duplicated:
        name = duplicated[0]
        positions = [str(i + 1) for i, n in enumerate(names) if n == name]
        raise DataInputError(
            f"{path}: the column '{name}' appears {len(positions)} times in {header} (columns "
            f"{', '.join(positions)}); which one holds the data is ambiguous. Remove or rename "
            f"the extra column(s) so each name appears once."
        )


def clean_names(names: Iterable[object]) -> list[str]:
    """Column names as the contract compares them: trimmed, without a byte-order mark."""
    return [str(c).strip().lstrip("\ufeff").strip() for c in names]


def _longest_bytes(values: pd.Series) -> float:
    """The longest value's length in bytes for Arrow text (no per-row count); infinity for other columns."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return math.inf
    longest = pc.max(pc.binary_length(pa.array(values))).as_py()
    return 0 if longest is None else longest


def check_fields(frame: pd.DataFrame, path: Path, limits: InputLimits) -> None:
    """No field over the limit: such a field is a broken export (typically a quote never closed)."""
    for column in frame.columns:
        values = frame[column]
        if _longest_bytes(values) <= limits.max_field_chars:  # every character is at least one byte
            continue
        lengths = values.str.len()
        longest = lengths.max()
        if pd.notna(longest) and longest > limits.max_field_chars:
            row = int(lengths.to_numpy(dtype="float64", na_value=0).argmax()) + 1
            raise DataInputError(
                f"{path}: row {row}, column '{column}': the value is {int(longest):,} characters "
                f"long, over the limit of {limits.max_field_chars:,}. No real export has such a "
                f"field: usually a quote that is never closed swallows the lines after it. Fix "
                f"the file or export it again."
            )


def finish(frame: pd.DataFrame, spec: EntitySpec, path: Path) -> pd.DataFrame:
    """A frame with no data rows is an error; ids are normalized the same way for every format."""
    if frame.empty:
        raise DataInputError(f"{path}: the file has a header but no data rows.")
    for column in spec.id_columns:
        if column in frame.columns:
            frame[column] = normalize_ids(frame[column])
            if column in spec.case_insensitive:
                frame[column] = frame[column].str.upper()
    return frame
