"""Reading JSON exports: a JSON array of objects, or JSON Lines (one object per line).

Python's json accepts what no export holds (NaN, 1e309, duplicate keys, any nesting): those become
contract problems here. Ids and names that are not text or numbers (null, objects, lists, booleans)
become missing, so the rules count and drop them; other nested values are kept as their JSON text.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from dagster_project import file_formats
from dagster_project.contract import LIMITS, EntitySpec, InputLimits
from dagster_project.export_checks import (
    DataInputError,
    check_header,
    clean_names,
    finish,
    read_content,
    refuse_binary_text,
)


class _JSONObject(dict):
    """A JSON object that remembers the keys it had more than once (json keeps only the last)."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, object]]) -> _JSONObject:
    obj = _JSONObject(pairs)
    if len(obj) < len(pairs):
        obj.duplicates = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return obj


def _too_deep(path: Path, limits: InputLimits, where: str = "") -> DataInputError:
    return DataInputError(
        f"{path}: {where}the JSON is nested more than {limits.max_json_depth} levels deep; an "
        f"export is a list of flat objects. Export the products again."
    )


def _loads(text: str, path: Path, limits: InputLimits, where: str = "") -> object:
    try:
        return json.loads(text, object_pairs_hook=_object)
    except RecursionError:
        raise _too_deep(path, limits, where) from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # e.g. an integer with more digits than Python converts
        raise DataInputError(
            f"{path}: {where}a number in the JSON has too many digits to be a value. Fix the file or export it again."
        ) from None


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
        raise DataInputError(
            f"{path}: item {item}, field '{key}': the value is {len(text):,} characters long, over "
            f"the limit of {limits.max_field_chars:,}. Fix the file or export it again."
        )
    return text


def _frame_from_records(records: list, spec: EntitySpec, path: Path, limits: InputLimits) -> pd.DataFrame:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
        if len(keys) > limits.max_columns:
            break
    names = clean_names(keys)
    check_header(names, spec, path, limits)
    for number, record in enumerate(records, start=1):
        if record.duplicates:
            raise DataInputError(
                f"{path}: item {number} has the field '{record.duplicates[0]}' more than once; which "
                f"value holds is ambiguous. Remove the extra field so each name appears once."
            )
        for key, value in record.items():
            if isinstance(value, str):
                if len(value) > limits.max_field_chars:
                    raise DataInputError(
                        f"{path}: item {number}, field '{key}': the value is {len(value):,} "
                        f"characters long, over the limit of {limits.max_field_chars:,}. No real "
                        f"export has such a field. Fix the file or export it again."
                    )
            elif value is not None:
                record[key] = _cell(value, key.strip() in spec.text_columns, path, number, key, limits)
    frame = pd.DataFrame.from_records(records, columns=list(keys))
    frame.columns = names
    return frame.astype("string")


def read_json_records(path: Path, spec: EntitySpec, limits: InputLimits = LIMITS) -> pd.DataFrame:
    """Read a JSON array of objects, or JSON Lines (one object per line); gzip, bzip2 or xz allowed."""
    path = Path(path)
    data, _ = read_content(path, spec)
    text = file_formats.decode(data).strip().lstrip("\ufeff")
    if not text:
        raise DataInputError(f"{path}: the file is empty; expected a JSON array of {spec.name} objects.")
    refuse_binary_text(path, spec, text[:4096])
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
            raise DataInputError(
                f"{path}: expected a JSON array of {spec.name} objects, found an object with the "
                f"list {where}. Export the array itself (or one object per line)."
            )
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), 0) if isinstance(records, list) else 0
        raise DataInputError(
            f"{path}: expected a JSON array of objects (or one object per line); item {bad + 1} is not an object."
        )
    if not records:
        raise DataInputError(f"{path}: the JSON array is empty.")
    frame = _frame_from_records(records, spec, path, limits)
    return finish(frame, spec, path)


def _read_json_lines(path: Path, text: str, first_error: json.JSONDecodeError, limits: InputLimits) -> list:
    lines = re.split(r"\r\n|\r|\n", text)  # not splitlines(): JSON strings may hold U+2028 and other breaks
    if len(lines) < 2 or not lines[0].lstrip().startswith("{"):
        raise DataInputError(
            f"{path}: invalid JSON at line {first_error.lineno}, column {first_error.colno}: "
            f"{first_error.msg}. Fix the file or export it again."
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_loads(line, path, limits, f"line {number}: "))
        except json.JSONDecodeError as exc:
            raise DataInputError(
                f"{path}: invalid JSON Lines record at line {number}, column {exc.colno}: {exc.msg}."
            ) from None
    return records
