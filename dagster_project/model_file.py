"""The model file: a data-only container that a reader can open without running anything from it.

A model file is an uncompressed ZIP archive holding one JSON document and NumPy arrays only (`.npy`,
read with `allow_pickle=False`, so object arrays are refused). Tables are stored column by column:
numbers as arrays, text as UTF-8 bytes, offsets and a validity mask, checked by Arrow (offsets, UTF-8)
before any value is used; times as UTC nanoseconds and a validity mask. No member is compressed, so
nothing expands in memory beyond the file's size on disk. Nothing in it is ever
unpickled or imported, so a file planted in `models/` can at worst fail to load: it cannot run code.
Members are read by their expected names only and never extracted to disk, and the ZIP's CRC-32 of
every member catches damage. Whatever a crafted file makes the readers raise is a refusal, and no
message quotes the file's content.

The file starts with the ZIP signature; the format before this one started with `RECOMART-MODEL`
and held a pickle: such files are refused with a message that says to retrain.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dagster_project.fileio import atomic_path

KIND = "recomart-model"
DOCUMENT = "model.json"
ZIP_SIGNATURE = b"PK\x03\x04"
PICKLE_ERA_MAGIC = b"RECOMART-MODEL"
MAX_MEMBERS = 256
ZIP64_OVER = 1 << 30  # bytes: a member this large is written with ZIP64 sizes


class ModelFileError(ValueError):
    """A file that is not a readable model container (the message says why, never quoting its bytes)."""


@dataclass(frozen=True)
class Bundle:
    """What a model file holds: a JSON document, named arrays and named tables."""

    document: dict[str, Any]
    arrays: dict[str, np.ndarray]
    tables: dict[str, pd.DataFrame]


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_bundle(path: Path, bundle: Bundle, version: int) -> Path:
    """Write the bundle atomically (temp file, fsync, rename) as format `version`."""
    members: dict[str, np.ndarray] = dict(bundle.arrays)
    layouts = {}
    for name, table in bundle.tables.items():
        layouts[name] = {"rows": len(table), "columns": []}
        for column in table.columns:
            kind, parts = _encode_column(table[column])
            layouts[name]["columns"].append({"name": str(column), "kind": kind})
            position = len(layouts[name]["columns"]) - 1
            members.update({f"{name}__{position}__{part}": values for part, values in parts.items()})
    document = {
        "kind": KIND,
        "format_version": version,
        **bundle.document,
        "arrays": sorted(bundle.arrays),
        "tables": layouts,
    }
    with atomic_path(Path(path)) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(DOCUMENT, json.dumps(document, default=_json_default))
        for name, array in members.items():
            array = np.ascontiguousarray(array)
            # written straight into the archive (no in-memory copy of the member first); ZIP64 for a member
            # that may pass 2 GiB, as writestr would choose it
            with archive.open(f"{name}.npy", "w", force_zip64=array.nbytes > ZIP64_OVER) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return Path(path)


def _encode_column(values: pd.Series) -> tuple[str, dict[str, np.ndarray]]:
    """A column as plain arrays: numbers as they are; text as UTF-8 bytes, offsets and a validity mask."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return "bool", {"values": values.to_numpy(dtype=bool)}
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        times = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
        return "datetime", {"values": times.array.asi8.copy(), "valid": times.notna().to_numpy()}
    if pd.api.types.is_numeric_dtype(values.dtype):
        if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
            return "int", {"values": values.to_numpy(dtype=np.int64)}
        return "float", {"values": values.to_numpy(dtype=np.float64, na_value=np.nan)}
    text = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):  # large tables read from Parquet come in several chunks
        text = text.combine_chunks()
    _, offsets, data = text.buffers()
    count = len(text)
    # the array may be a slice of its buffers: keep just its own bytes, with offsets from 0
    bounds = np.frombuffer(offsets, dtype=np.int64, count=count + 1, offset=text.offset * 8)
    start, end = int(bounds[0]), int(bounds[-1])
    return "text", {
        "offsets": bounds - start,
        "data": np.frombuffer(data, dtype=np.uint8)[start:end].copy() if data is not None else np.zeros(0, np.uint8),
        "valid": ~text.is_null().to_numpy(zero_copy_only=False),
    }


def read_bundle(path: Path, version: int) -> Bundle:
    """Read a bundle of format `version`; a `ModelFileError` for anything else, whatever its bytes."""
    path = Path(path)
    with open(path, "rb") as handle:
        start = handle.read(len(PICKLE_ERA_MAGIC))
        if start == PICKLE_ERA_MAGIC:
            raise ModelFileError(
                "it was written by an earlier RecoMart version in a format this version no longer reads"
            )
        if not start.startswith(ZIP_SIGNATURE):
            raise ModelFileError("it is not a RecoMart model file")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                return _read_members(archive, version)
        except ModelFileError:
            raise
        except Exception as exc:  # whatever a crafted archive makes zipfile or numpy raise: refused, not crashed
            raise ModelFileError(f"it is damaged, truncated or crafted ({type(exc).__name__})") from None


def _read_members(archive: zipfile.ZipFile, version: int) -> Bundle:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS or any(i.compress_type != zipfile.ZIP_STORED or i.flag_bits & 0x1 for i in infos):
        raise ModelFileError("it is not a RecoMart model file (unexpected archive layout)")
    try:
        document = json.loads(archive.read(DOCUMENT))
    except (KeyError, ValueError, RecursionError):
        raise ModelFileError("it is not a RecoMart model file (no readable model.json)") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise ModelFileError("it is not a RecoMart model file")
    found = document.get("format_version")
    if found != version:
        shown = found if isinstance(found, int) and not isinstance(found, bool) else "unknown"
        raise ModelFileError(f"it has model format {shown}; this version reads {version}")
    arrays = {name: _array(archive, name) for name in _names(document.get("arrays"), "arrays")}
    layouts = document.get("tables")
    if not isinstance(layouts, dict):
        raise ModelFileError("it is not a RecoMart model file (bad tables list)")
    tables = {name: _table(archive, name, layouts[name]) for name in _names(list(layouts), "tables")}
    return Bundle(document, arrays, tables)


def _array(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """One stored array: plain numbers only, its bytes exactly what its header says.

    The member is read once (its CRC-32 checked by zipfile), its `.npy` header parsed by NumPy's own
    header readers, and the numbers taken from those bytes with one copy (np.load copies them twice).
    An object array (pickle), a header of another kind or a size that does not match is refused.
    """
    try:
        data = archive.read(f"{member}.npy")
        header = io.BytesIO(data)
        version = np.lib.format.read_magic(header)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, fortran_order, dtype = readers[version](header)
    except (ValueError, MemoryError, KeyError, SyntaxError):
        raise ModelFileError(f"its array {member!r} is missing or not plain numbers") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(f"its array {member!r} is not plain numbers")
    count = math.prod(shape)  # exact: a crafted shape cannot overflow into a matching size
    if any(n < 0 for n in shape) or len(data) - header.tell() != count * dtype.itemsize:
        raise ModelFileError(f"its array {member!r} is missing or not plain numbers")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header.tell())
    order = "F" if fortran_order else "C"
    return values.reshape(shape, order=order).copy(order=order)  # a writable array of its own


def _table(archive: zipfile.ZipFile, name: str, layout: object) -> pd.DataFrame:
    """A stored table, column by column; text is checked (offsets, UTF-8) before any value is used."""
    if (
        not isinstance(layout, dict)
        or not isinstance(layout.get("rows"), int)
        or not isinstance(layout.get("columns"), list)
        or len(layout["columns"]) > MAX_MEMBERS
    ):
        raise ModelFileError(f"its table {name!r} has no readable layout")
    rows, columns = layout["rows"], {}
    for position, column in enumerate(layout["columns"]):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or column["name"] in columns:
            raise ModelFileError(f"its table {name!r} has no readable layout")
        prefix = f"{name}__{position}__"
        if column.get("kind") in ("int", "float", "bool"):
            values = _array(archive, prefix + "values")
        elif column.get("kind") == "datetime":
            ticks, valid = _array(archive, prefix + "values"), _array(archive, prefix + "valid")
            if ticks.dtype != np.int64 or valid.dtype != bool or ticks.shape != valid.shape:
                raise ModelFileError(f"its table {name!r} has a damaged time column")
            values = pd.DatetimeIndex(pd.to_datetime(ticks, unit="ns", utc=True)).where(valid, pd.NaT)
        elif column.get("kind") == "text":
            offsets, data, valid = (_array(archive, prefix + part) for part in ("offsets", "data", "valid"))
            if offsets.dtype != np.int64 or data.dtype != np.uint8 or valid.dtype != bool or len(valid) != rows:
                raise ModelFileError(f"its table {name!r} has a damaged text column")
            try:
                text = pa.LargeStringArray.from_buffers(
                    rows, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(np.packbits(valid, bitorder="little"))
                )
                text.validate(full=True)
            except (pa.ArrowException, ValueError):
                raise ModelFileError(f"its table {name!r} has a damaged text column") from None
            values = pd.array(text, dtype="str")
        else:
            raise ModelFileError(f"its table {name!r} has a column of unknown kind")
        if len(values) != rows:
            raise ModelFileError(f"its table {name!r} has columns of different lengths")
        columns[column["name"]] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(rows))


def _names(names: object, key: str) -> list[str]:
    """Member names: identifiers, each once, and no more than an archive may hold."""
    if (
        not isinstance(names, list)
        or len(names) > MAX_MEMBERS
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n.isidentifier() for n in names)
    ):
        raise ModelFileError(f"it is not a RecoMart model file (bad {key} list)")
    return names
