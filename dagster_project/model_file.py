"""The model file: a data-only container that a reader can open without running anything from it.

A model file is an uncompressed ZIP archive holding one JSON document, NumPy arrays (`.npy`, read
with `allow_pickle=False`, so object arrays are refused) and tables (Arrow IPC files, fully validated
when read; uncompressed, because they load ~10x faster than Parquet and the app loads models often). Nothing in it is ever
unpickled or imported, so a file planted in `models/` can at worst fail to load: it cannot run code.
Members are read by their expected names only and never extracted to disk; stored (not deflated)
members keep a crafted file from expanding in memory beyond its size on disk, and the ZIP's CRC-32
of every member catches damage.

The file starts with the ZIP signature; the format before this one started with `RECOMART-MODEL`
and held a pickle: such files are refused with a message that says to retrain.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from dagster_project.fileio import atomic_path

KIND = "recomart-model"
DOCUMENT = "model.json"
ZIP_SIGNATURE = b"PK\x03\x04"
PICKLE_ERA_MAGIC = b"RECOMART-MODEL"
MAX_MEMBERS = 64


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
    document = {"kind": KIND, "format_version": version, **bundle.document,
                "arrays": sorted(bundle.arrays), "tables": sorted(bundle.tables)}
    with atomic_path(Path(path)) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(DOCUMENT, json.dumps(document, default=_json_default))
            for name, array in bundle.arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())
            for name, table in bundle.tables.items():
                buffer = io.BytesIO()
                arrow = pa.Table.from_pandas(table, preserve_index=False)
                with ipc.new_file(buffer, arrow.schema) as writer:
                    writer.write_table(arrow)
                archive.writestr(f"{name}.arrow", buffer.getvalue())
    return Path(path)


def read_bundle(path: Path, version: int) -> Bundle:
    """Read a bundle of format `version`; a `ModelFileError` for anything else, whatever its bytes."""
    path = Path(path)
    with open(path, "rb") as handle:
        start = handle.read(len(PICKLE_ERA_MAGIC))
        if start == PICKLE_ERA_MAGIC:
            raise ModelFileError("it was written by an earlier RecoMart version in a format this version no "
                                 "longer reads")
        if not start.startswith(ZIP_SIGNATURE):
            raise ModelFileError("it is not a RecoMart model file")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                return _read_members(archive, version)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError) as exc:
            raise ModelFileError(f"it is damaged or truncated ({type(exc).__name__})") from None


def _read_members(archive: zipfile.ZipFile, version: int) -> Bundle:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS or any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        raise ModelFileError("it is not a RecoMart model file (unexpected archive layout)")
    try:
        document = json.loads(archive.read(DOCUMENT))
    except (KeyError, ValueError, RecursionError):
        raise ModelFileError("it is not a RecoMart model file (no readable model.json)") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise ModelFileError("it is not a RecoMart model file")
    if document.get("format_version") != version:
        raise ModelFileError(f"it has model format {document.get('format_version')!r}; this version reads {version}")
    arrays, tables = {}, {}
    for name in _names(document, "arrays"):
        try:
            array = np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
        except (ValueError, MemoryError):
            raise ModelFileError(f"its array {name!r} is not plain numbers") from None
        if array.dtype.kind not in "biuf":
            raise ModelFileError(f"its array {name!r} is not plain numbers")
        arrays[name] = array
    for name in _names(document, "tables"):
        try:
            table = ipc.open_file(pa.BufferReader(archive.read(f"{name}.arrow"))).read_all()
            table.validate(full=True)  # offsets and lengths checked before any value is touched
            tables[name] = table.to_pandas()
        except (pa.ArrowException, ValueError, TypeError, MemoryError):
            raise ModelFileError(f"its table {name!r} cannot be read") from None
    return Bundle(document, arrays, tables)


def _names(document: dict, key: str) -> list[str]:
    names = document.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ModelFileError(f"it is not a RecoMart model file (bad {key} list)")
    return names
