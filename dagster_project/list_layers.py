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
combined ones inside it (SUMMARY_KEY), so a summary never reads the whole base. So is where each customer's rows
are in the base (`customers.arrow`, with the base id: `BaseRecord`): an update learns the base's customers and
reads only the row groups of its buyers from it, instead of reading the base's 19.7M customer ids at 10M
purchases. A record that is missing (lists written before it was kept), of another base or damaged is not used:
the update reads the base's ids as before and keeps the record for the next night.

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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project.fileio import atomic_path
from dagster_project.list_building import CATALOGUE_KEY, LINEAGE_KEY, SCHEMA
from dagster_project.list_summary import SUMMARY_COLUMNS, Parts, parts_of_file  # noqa: F401  (SUMMARY_COLUMNS: part of the interface)

FOLDER = "user_recommendations"
BASE_NAME = "user_recommendations.parquet"
LAYER_NAME = "changes.parquet"
SUMMARY_NAME = "summary.json"  # the base's summary parts, with its id
RECORD_NAME = "customers.arrow"  # where each customer's rows are in the base, with its id (BaseRecord)
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


def record_path(storage_dir: Path) -> Path:
    return folder(storage_dir) / RECORD_NAME


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

    def record(self) -> BaseRecord | None:
        """Where each customer's rows are in the base, when the record kept beside it is this base's and whole
        (None else: none kept, another base's, or damaged; the base's own ids tell then)."""
        try:
            with pa.OSFile(str(record_path(self.storage_dir)), "rb") as source:
                table = pa.ipc.open_file(source).read_all()
            if (table.schema.metadata or {}).get(BASE_KEY, b"").decode() != self.base_id:
                return None
            return BaseRecord.from_table(table, self.base)
        except (OSError, ValueError, pa.ArrowException):
            return None

    def base_parts(self) -> Parts:
        """The base's summary parts: from summary.json when it is the base's, else counted from the base."""
        try:
            return Parts.from_json(json.dumps(self.kept()["parts"]))
        except (KeyError, ValueError):
            return parts_of_base(self.base_handle)


RECORD_SCHEMA = pa.schema(
    [
        ("user_id", pa.dictionary(pa.int32(), pa.string())),  # each run's customer (the customers once each)
        ("group", pa.int32()),  # the row group of the run
        ("first", pa.int32()),  # its first row in the row group
        ("rows", pa.int32()),  # how many rows
    ]
)


@dataclass(frozen=True)
class BaseRecord:
    """Where each customer's rows are in a base file: the customers (once each, in the order of the model's
    profiles when written with the model) and the runs of rows in the file's order, a run being one customer's
    consecutive rows in one row group (a customer has two: their new list and their buy-again list)."""

    customers: pa.Array  # text ids, each once
    customer: np.ndarray  # per run: the customer's position in `customers`
    group: np.ndarray  # per run: its row group
    first: np.ndarray  # per run: its first row in the row group
    rows: np.ndarray  # per run: its rows

    @classmethod
    def of_base(cls, source: BinaryIO | Path) -> BaseRecord:
        """The record of a base file, from its customer ids read a row group at a time as dictionaries (about a
        second at 19.7M rows). ValueError for a base with customers without an id."""
        file = pq.ParquetFile(source, read_dictionary=["user_id"])
        dictionaries: list[pa.Array] = []
        runs: list[tuple[np.ndarray, ...]] = []
        offset = 0
        for i in range(file.num_row_groups):
            start = 0
            for chunk in file.read_row_group(i, columns=["user_id"])["user_id"].chunks:
                if chunk.null_count:
                    raise ValueError(f"row group {i} has rows without a customer id")
                codes = chunk.indices.to_numpy(zero_copy_only=False).astype(np.int64)
                begins = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if codes.size else codes
                sizes = np.diff(np.r_[begins, codes.size])
                runs.append((codes[begins] + offset, np.full(begins.size, i), begins + start, sizes))
                dictionaries.append(chunk.dictionary.cast(pa.string()))
                offset += len(chunk.dictionary)
                start += codes.size
        if not runs:
            return cls(pa.array([], pa.string()), *[np.zeros(0, dtype=np.int64)] * 4)
        codes, group, first, rows = (np.concatenate(column) for column in zip(*runs))
        every = pa.concat_arrays(dictionaries)
        distinct = pc.unique(every)  # a customer is in the dictionaries of two row groups (their two lists)
        places = pc.index_in(every, value_set=distinct).to_numpy(zero_copy_only=False).astype(np.int64)
        customer = places[codes]
        shown = np.zeros(len(distinct), dtype=bool)
        shown[customer] = True  # a dictionary may hold ids without rows: they are not the base's customers
        renumbered = np.cumsum(shown) - 1
        return cls(distinct.filter(pa.array(shown)), renumbered[customer], group, first, rows)

    def in_order_of(self, ids: pa.Array) -> BaseRecord:
        """The same record with its customers in the order of `ids` (a model's customers: as they only join after
        the others, the base's customers are then the first of a later model's, checked without a look-up); as it
        is when some are not there."""
        places = pc.index_in(self.customers, value_set=ids)
        if places.null_count:
            return self
        sort = np.argsort(places.to_numpy(zero_copy_only=False), kind="stable")
        renumbered = np.empty_like(sort)
        renumbered[sort] = np.arange(sort.size)
        return BaseRecord(self.customers.take(pa.array(sort)), renumbered[self.customer], *self.places)

    @property
    def places(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.group, self.first, self.rows

    def members(self, ids: pa.Array) -> np.ndarray:
        """Which of `ids` (a model's customers, in the order of its profiles) the base has."""
        count = len(self.customers)
        if count <= len(ids) and ids.slice(0, count).equals(self.customers):  # recorded in this order
            return np.arange(len(ids)) < count
        return pc.is_in(ids, value_set=self.customers).to_numpy(zero_copy_only=False)

    def table(self) -> pa.Table:
        user_id = pa.DictionaryArray.from_arrays(pa.array(self.customer, pa.int32()), self.customers)
        columns = [user_id, *(pa.array(a, pa.int32()) for a in (self.group, self.first, self.rows))]
        return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)

    @classmethod
    def from_table(cls, table: pa.Table, base: pq.ParquetFile) -> BaseRecord:
        """The record a table holds, when it covers every row of `base` once, run after run in the file's order
        (ValueError else: a damaged record, or a base written again under the same id)."""
        if not table.schema.remove_metadata().equals(RECORD_SCHEMA):
            raise ValueError("not a record of a lists file")
        column = table["user_id"].combine_chunks() if table.num_rows else None
        if column is None or column.null_count:
            raise ValueError("runs without a customer")
        group, first, rows = (table[c].to_numpy().astype(np.int64) for c in ("group", "first", "rows"))
        customer = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        sizes = np.array([base.metadata.row_group(i).num_rows for i in range(base.num_row_groups)], dtype=np.int64)
        if group.min() < 0 or group.max() >= sizes.size or rows.min() <= 0 or first.min() < 0:
            raise ValueError("runs outside the base's row groups")
        starts = np.r_[0, np.cumsum(sizes)][group] + first
        if not (
            np.array_equal(starts, np.r_[0, np.cumsum(rows)[:-1]])  # one run after another, from the first row
            and np.all(first + rows <= sizes[group])  # each within its row group
            and int(rows.sum()) == base.metadata.num_rows  # to the last row
            and customer.min() >= 0
            and customer.max() < len(column.dictionary)
        ):
            raise ValueError("runs that do not cover the base's rows once each")
        return cls(column.dictionary.cast(pa.string()), customer, group, first, rows)


def write_record(record: BaseRecord, storage_dir: Path, base_id: str) -> Path:
    """Keep `record` beside the base it describes (named by its id), atomically."""
    path = record_path(storage_dir)
    table = record.table().replace_schema_metadata({BASE_KEY: base_id.encode()})
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_file(sink, table.schema, options=options) as writer,
    ):
        writer.write_table(table)
    return path


def parts_of_base(source: BinaryIO | Path) -> Parts:
    """The summary parts of a whole base file (read as dictionaries: a few seconds at 19.7M rows)."""
    return parts_of_file(source)


def _damaged(path: Path, why: str) -> DamagedLists:
    return DamagedLists(
        f"The customer lists' file {path} cannot be read: {why}. Run a complete refresh to write every "
        "customer's lists again."
    )


@contextmanager
def opened(storage_dir: Path) -> Iterator[Stored]:
    """The stored lists, base and layer opened as one consistent pair (see the module docstring).

    FileNotFoundError without a base; DamagedLists when a layer is there but cannot be read, or when reading either
    file fails inside the block (the footers are read here, the data only when asked for).
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
        try:
            base_file = pq.ParquetFile(base_handle)
        except (OSError, pa.ArrowException) as error:
            raise _damaged(base, f"it is not a readable Parquet file ({error})") from None
        stored = Stored(storage_dir, base_file, base_handle, None, None)
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
        try:
            yield stored
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as error:  # data damaged behind a readable footer (a bad block)
            files = base.name + (f" and {layer.name}" if stored.layer is not None else "")
            why = " ".join(str(error).split()).rstrip(".")
            raise DamagedLists(
                f"The customer lists in {storage_dir} ({files}) cannot be read: {why}. Run a complete refresh to "
                "write every customer's lists again."
            ) from None


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
