"""The stored customer lists as a base file and one layer of changed customers, and reading them as one.

A full write stores every customer's lists in the base file (`user_recommendations.parquet`). A nightly model
update changes the lists of the customers who bought (about 25,000 of 985,000 at 10M purchases), but customers
are ordered by purchases, so rewriting the base moves nearly every row group: 19.7M rows decoded and encoded
again (about 17 s of CPU at least). Instead an update writes only a layer beside the base (`changes.parquet`):
the lists of every customer built again since the base (cumulative: each update replaces the layer, its new
buyers' rows replacing theirs in the previous layer; small, as a full training comes at least every 3 days).
A customer's rows in the layer replace their rows in the base; new customers are in the layer only.

No manifest: each file is written atomically (fileio.atomic_path) and the base carries a random id
(BASE_KEY in its Parquet metadata; a base from before has its file's identity instead) that its layer
repeats. A reader opens the layer, then the base, and uses the layer only when the ids match; so a full
write is: the new base, then the layer removed, and a reader in between sees the new base and ignores the
old layer. Open files keep their contents when the files
are replaced, so every read of a `Stored` sees one consistent pair. A layer that cannot be read is an error
naming the file (an update writes everything again instead), never lists silently missing their changes.

The base's summary parts (list_summary) are kept beside it (`summary.json`, with the base id), the layer's
combined ones inside it (SUMMARY_KEY), so a summary never reads the whole base.

Imports no Dagster; `customer_lists` is the interface.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project.list_building import CATALOGUE_KEY, LINEAGE_KEY, SCHEMA
from dagster_project.list_summary import SUMMARY_COLUMNS, Parts, parts_of_file  # noqa: F401  (SUMMARY_COLUMNS: part of the interface)

FOLDER = "user_recommendations"
BASE_NAME = "user_recommendations.parquet"
LAYER_NAME = "changes.parquet"
SUMMARY_NAME = "summary.json"  # the base's summary parts, with its id
BASE_KEY = b"recomart.base"  # Parquet metadata: the base's id (in the base), the base it belongs to (in a layer)
SUMMARY_KEY = b"recomart.summary"  # Parquet metadata of a layer: the summary parts of base and layer together


class DamagedLists(ValueError):
    """A stored lists file that cannot be read as one; the message names the file and what to do."""


def folder(storage_dir: Path) -> Path:
    return Path(storage_dir) / FOLDER


def base_path(storage_dir: Path) -> Path:
    return folder(storage_dir) / BASE_NAME


def layer_path(storage_dir: Path) -> Path:
    return folder(storage_dir) / LAYER_NAME


def summary_path(storage_dir: Path) -> Path:
    return folder(storage_dir) / SUMMARY_NAME


def new_base_id() -> str:
    return uuid.uuid4().hex


def _metadata(file: pq.ParquetFile) -> dict[bytes, bytes]:
    return file.schema_arrow.metadata or {}


def _json(metadata: dict[bytes, bytes], key: bytes) -> dict:
    try:
        found = json.loads(metadata.get(key) or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@dataclass
class Stored:
    """The base file and its layer (None when there is none, or it belongs to another base), opened together."""

    storage_dir: Path
    base: pq.ParquetFile
    base_handle: BinaryIO
    layer: pq.ParquetFile | None
    layer_handle: BinaryIO | None

    @property
    def base_id(self) -> str:
        """The id the base carries; for a base written before ids were (no id), its file's identity: inode, size
        and modification time of the file opened (a full write always makes a new file, and gives it an id)."""
        found = (_metadata(self.base).get(BASE_KEY) or b"").decode()
        if found:
            return found
        stat = os.fstat(self.base_handle.fileno())
        return f"file-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"

    @property
    def metadata(self) -> dict[bytes, bytes]:
        """The lists' metadata: the layer's when there is one (its lineage and catalogue are the latest)."""
        return _metadata(self.layer if self.layer is not None else self.base)

    @property
    def lineage(self) -> dict:
        return _json(self.metadata, LINEAGE_KEY)

    @property
    def catalogue(self) -> dict:
        return _json(self.metadata, CATALOGUE_KEY)

    def changed(self) -> pa.Array:
        """The ids of the customers whose lists the layer holds (empty without a layer)."""
        if self.layer is None:
            return pa.array([], pa.string())
        return pc.unique(self.read_layer(["user_id"])["user_id"]).cast(pa.string())

    def read_layer(self, columns: list[str] | None = None, filters: pc.Expression | None = None) -> pa.Table:
        return pq.read_table(self.layer_handle, columns=columns, filters=filters)

    def read(self, columns: list[str] | None = None, filters: list | pc.Expression | None = None) -> pa.Table:
        """The lists as a full write stores them (the base's rows of the changed customers left out, the layer's
        rows after the base's), with the lists' metadata."""
        expression = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
        if self.layer is None:
            return pq.read_table(self.base_handle, columns=columns, filters=expression)
        kept = ~pc.field("user_id").isin(self.changed())
        base = pq.read_table(
            self.base_handle, columns=columns, filters=kept if expression is None else kept & expression
        )
        layer = self.read_layer(columns, expression)
        schema = layer.schema.with_metadata(self.metadata)
        return pa.concat_tables(
            [base.replace_schema_metadata(schema.metadata), layer.replace_schema_metadata(schema.metadata)]
        )

    def tables(self) -> Iterator[pa.Table]:
        """The combined lists a row group at a time (the base's row groups without the changed customers, then the
        layer's), for writing them out as one file without holding them all."""
        changed = self.changed()
        for i in range(self.base.num_row_groups):
            group = self.base.read_row_group(i)
            if len(changed):
                group = group.filter(pc.invert(pc.is_in(group["user_id"], value_set=changed)))
            if group.num_rows:
                yield group
        if self.layer is not None:
            for i in range(self.layer.num_row_groups):
                yield self.layer.read_row_group(i)

    def parts(self) -> Parts:
        """The summary parts of the combined lists: the layer's, else the base's (kept beside it, or counted)."""
        if self.layer is not None:
            try:
                return Parts.from_json(self.metadata[SUMMARY_KEY])
            except (KeyError, ValueError) as error:
                raise _damaged(layer_path(self.storage_dir), f"its summary is unreadable ({error})") from None
        return self.base_parts()

    def kept(self) -> dict:
        """What the full write kept beside the base (summary parts, SHA-256), when it is this base's ({} else:
        a full write stopped before writing it, or lists from before it was kept)."""
        try:
            kept = json.loads(summary_path(self.storage_dir).read_text())
        except (OSError, ValueError):
            return {}
        return kept if isinstance(kept, dict) and self.base_id and kept.get("base") == self.base_id else {}

    def base_parts(self) -> Parts:
        """The base's summary parts: from summary.json when it is the base's, else counted from the base."""
        try:
            return Parts.from_json(json.dumps(self.kept()["parts"]))
        except (KeyError, ValueError):
            return parts_of_base(self.base_handle)


def parts_of_base(source: BinaryIO | Path) -> Parts:
    """The summary parts of a whole base file (read as dictionaries: a few seconds at 19.7M rows)."""
    return parts_of_file(source)


def _damaged(path: Path, why: str) -> DamagedLists:
    return DamagedLists(
        f"The customer lists' changes file {path} cannot be read: {why}. Run a complete refresh to write every "
        "customer's lists again."
    )


@contextmanager
def opened(storage_dir: Path) -> Iterator[Stored]:
    """The stored lists, base and layer opened as one consistent pair (see the module docstring).

    FileNotFoundError without a base; DamagedLists when a layer is there but cannot be read.
    """
    storage_dir = Path(storage_dir)
    base, layer = base_path(storage_dir), layer_path(storage_dir)
    with ExitStack() as files:
        try:  # the layer first: a base opened after it is its base or a newer one
            layer_handle: BinaryIO | None = files.enter_context(open(layer, "rb"))
        except FileNotFoundError:
            layer_handle = None
        try:
            base_handle = files.enter_context(open(base, "rb"))
        except FileNotFoundError:
            raise FileNotFoundError(f"No customer lists at {base}: run the complete pipeline to make them.") from None
        stored = Stored(storage_dir, pq.ParquetFile(base_handle), base_handle, None, None)
        if layer_handle is not None:
            try:
                layer_file = pq.ParquetFile(layer_handle)
            except (OSError, pa.ArrowException) as error:
                raise _damaged(layer, f"it is not a readable Parquet file ({error})") from None
            belongs_to = (_metadata(layer_file).get(BASE_KEY) or b"").decode()
            if belongs_to and belongs_to == stored.base_id:  # else the layer of an older base: ignored
                if not layer_file.schema_arrow.remove_metadata().equals(SCHEMA):
                    raise _damaged(layer, "its columns are not the lists' columns")
                stored.layer, stored.layer_handle = layer_file, layer_handle
        yield stored


def frame_of(table: pa.Table) -> pd.DataFrame:
    """A table of lists as pandas: `because` as Python lists, the catalogue in attrs."""
    frame = table.to_pandas()
    if "because" in frame:
        frame["because"] = table.column("because").to_pylist()
    frame.attrs["catalogue"] = _json(table.schema.metadata or {}, CATALOGUE_KEY)
    return frame


def preview(stored: Stored, rows: int) -> pd.DataFrame:
    """The first rows of the combined lists, read a row group at a time."""
    found: list[pa.Table] = []
    for table in stored.tables():
        found.append(table.slice(0, rows - sum(t.num_rows for t in found)))
        if sum(t.num_rows for t in found) >= rows:
            break
    if not found:
        return pd.DataFrame()
    return pa.concat_tables([t.replace_schema_metadata(None) for t in found]).to_pandas()


def parquet_bytes(stored: Stored) -> bytes:
    """The combined lists as one Parquet file: the base file itself when it has no layer, else composed a row group
    at a time (the base's without the changed customers, then the layer's), with the lists' metadata."""
    if stored.layer is None:
        stored.base_handle.seek(0)
        return stored.base_handle.read()
    metadata = {k: v for k, v in stored.metadata.items() if k in (CATALOGUE_KEY, LINEAGE_KEY)}
    schema = SCHEMA.with_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema) as writer:
        for table in stored.tables():
            writer.write_table(table.replace_schema_metadata(metadata))
    return sink.getvalue().to_pybytes()
