"""Updating the stored customer lists after a model update: only the customers who bought get new lists.

A model updated with new purchases keeps its product side as trained (factors, neighbours, popularity, catalogue)
and changes only the purchase rows of the customers who bought (new customers appended). Only their lists
change, so only theirs are built again (`list_building.build(only=...)`: the rows a build of everyone gives
them), and they are written as the layer beside the base file (list_layers): the previous layer's rows of the
customers not built again, and the new rows. The base is not touched: rewriting it cost re-encoding its 19.7M
rows at 10M purchases (about 17 s of CPU at least, 37 s measured), because customers move in its order when
they buy; the layer costs the rebuilt lists and writing their rows (docs/BENCHMARKS.md, "Updating the lists").
The layer carries the summary parts of base and layer together, so no reader counts the base again: the
previous parts, minus those of the rebuilt customers' previous rows (from the previous layer, or read from the
base: only the row groups the base's record places them in, list_layers.BaseRecord), plus those of their new rows.
The cost grows with the day's buyers, not the history, where it can: the base's customers come from its record
(not from its 19.7M customer ids at 10M purchases), the customers' order and ids from the model's profiles in
Arrow (no table of every customer), and only the rebuilt customers' names and e-mails are taken.

The lists say what they came from (`lineage`, under list_building.LINEAGE_KEY): an update builds only on lists
of the same trained model, from its previous update or this one; anything else is for a full write.

Imports no Dagster; `customer_lists.update_for_model` is the interface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project import list_building, list_layers
from dagster_project.contract import id_key
from dagster_project.list_building import LINEAGE_KEY, SCHEMA
from dagster_project.list_summary import parts_of
from dagster_project.recommender import RecommenderModel

# Above this share of customers in the layer, a full write is done instead (the layer would cost about as much).
MOST_REBUILT = 0.5
KEPT_ROWS = 1 << 14  # the previous layer's kept rows, written this many to a row group


def product_side(model: RecommenderModel) -> str:
    """A fingerprint of everything an unchanged customer's lists depend on besides their own purchases: the item
    factors and weights, popularity, neighbours, settings and catalogue (a few tens of ms at 20,000 products)."""
    digest = hashlib.sha256()
    neighbours = model.neighbours.tocsr()
    arrays = [model.item_factors, model.factor_weights, model.popularity]
    for array in [*arrays, neighbours.indptr, neighbours.indices, neighbours.data]:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.view(np.uint8).reshape(-1))
    digest.update(json.dumps(asdict(model.params), sort_keys=True).encode())
    items = model.items[["product_id", "name", "category"]].astype("string").fillna("\x00")
    digest.update(pd.util.hash_pandas_object(items, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def lineage(model: RecommenderModel, n: int) -> dict:
    """What stored lists came from: the trained model (its training time, version and run), its update count, the
    list length and the product side's fingerprint."""
    card = model.card
    return {
        "trained_at": card.trained_at,
        "version": card.version,
        "run_id": card.run_id,
        "updates": card.updates,
        "based_on": card.update.based_on if card.update is not None else None,
        "list_length": n,
        "product_side": product_side(model),
    }


def stored_lineage(path: Path) -> dict:
    """The lineage a stored lists file records ({} when there is no file, or it records none)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(LINEAGE_KEY)
        found = json.loads(raw) if raw else {}
    except (OSError, ValueError, pa.ArrowException):
        return {}
    return found if isinstance(found, dict) else {}


def builds_on(stored: dict, current: dict) -> bool:
    """Whether an update to `current` may build on lists stored from `stored`: the same trained model and product
    side and list length, stored from the version this update was made from (its customers are the ones to build
    again) or from this one."""
    same = all(stored.get(key) == current[key] for key in ("trained_at", "product_side", "list_length"))
    # the lists of the very version the update was made from (a roll-back in between serves another one)
    version = stored.get("version") in (current["version"], current["based_on"])
    return same and version and stored.get("updates") in (current["updates"] - 1, current["updates"])


def _ids(user_ids: Iterable[object], ids: pa.Array) -> np.ndarray:
    """The ranks of the given customers (stored ids as they are, others normalized); ids not there are left out.
    Looked up in the given ids, not in all the customers: a hash of the day's buyers, not of a million ids."""
    given = pa.array([u if isinstance(u, str) else id_key(u) for u in user_ids], pa.string())
    hit = pc.is_in(ids, value_set=given).to_numpy(zero_copy_only=False)
    found = pc.is_in(given, value_set=ids.filter(pa.array(hit)))
    missing = given.filter(pc.invert(found)).to_pylist()
    if missing:  # text ids not in stored form ("  1001 ")
        hit |= pc.is_in(ids, value_set=pa.array([id_key(u) for u in missing], pa.string())).to_numpy(False)
    return np.flatnonzero(hit)


GONE_COLUMNS = ["user_id", "list", "product_id", "category", "reason"]  # what leaving customers take from a summary


def _base_rows(base: BinaryIO, record: list_layers.BaseRecord, wanted: pa.Array) -> pa.Table | None:
    """The base's rows of the `wanted` customers (the columns their summary parts need): from the row groups the
    record places them in, their ids from the record (the base's id column is not read)."""
    hit = pc.is_in(record.customers, value_set=wanted).to_numpy(zero_copy_only=False)
    runs = np.flatnonzero(hit[record.customer]) if hit.any() else np.zeros(0, dtype=np.int64)
    if not runs.size:
        return None
    file = pq.ParquetFile(base, read_dictionary=GONE_COLUMNS)
    groups, begins = np.unique(record.group[runs], return_index=True)  # runs are in the file's order
    found = []
    for group, mine in zip(groups, np.split(runs, begins[1:])):
        first, rows = record.first[mine], record.rows[mine]
        where = np.repeat(first - np.r_[0, np.cumsum(rows)[:-1]], rows) + np.arange(rows.sum())
        table = file.read_row_group(int(group), columns=GONE_COLUMNS[1:]).take(pa.array(where))
        ids = record.customers.take(pa.array(np.repeat(record.customer[mine], rows)))
        found.append(table.append_column("user_id", ids).replace_schema_metadata(None))
    return pa.concat_tables(found)


def _summary_table(table: pa.Table | None) -> pa.Table:
    """The summary columns of some rows, as plain text (product names left empty where not read: the parts keep
    each product's name already)."""
    columns = list_layers.SUMMARY_COLUMNS
    if table is None or not table.num_rows:
        return SCHEMA.empty_table().select(columns)
    arrays = []
    for name in columns:
        if name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, pa.string()))
            continue
        column = table[name]
        arrays.append(column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column)
    return pa.Table.from_arrays(arrays, names=columns)


def update(
    model: RecommenderModel, storage_dir: Path, user_ids: Iterable[object], n: int, catalogue: dict
) -> int | None:
    """Write the layer of the stored lists under `storage_dir` for `model`, building again only the given customers'
    lists (and those of customers the lists lack); how many customers were built again, or None when the stored
    lists cannot be built on (none, lists of another model, a layer that cannot be read, customers the model no
    longer has, too many to build again) and nothing was written."""
    current = lineage(model, n)
    try:
        with list_layers.opened(storage_dir) as stored:
            if not builds_on(stored.lineage, current):
                return None
            record = stored.record()
            kept = record is not None
            if record is None:  # lists written before the record was kept, or it is not this base's
                try:
                    record = list_layers.BaseRecord.of_base(stored.base_handle)
                except ValueError:  # rows without a customer id: written whole
                    return None
                record = record.in_order_of(list_building.profile_ids(model))
            made = _layer(model, stored, record, user_ids, n, current)
            base_id = stored.base_id
    except (FileNotFoundError, list_layers.DamagedLists):
        return None
    if made is None:
        return None
    tables, extra, rebuilt = made
    list_building.write(tables, list_layers.layer_path(storage_dir), catalogue, current, extra)
    if not kept:  # the next night reads only its buyers' row groups
        list_layers.write_record(record, storage_dir, base_id)
    return rebuilt


def _layer(
    model: RecommenderModel,
    stored: list_layers.Stored,
    record: list_layers.BaseRecord,
    user_ids: Iterable[object],
    n: int,
    current: dict,
) -> tuple[list[pa.Table], dict[bytes, bytes], int] | None:
    """The new layer's tables and metadata, and how many customers were built again (None: write everything)."""
    order = model.customer_order()
    profile = list_building.profile_ids(model)
    ids = profile.take(pa.array(order))
    given = _ids(user_ids, ids)
    previous = stored.read_layer() if stored.layer is not None else SCHEMA.empty_table()
    layer_customers = pc.unique(previous["user_id"])
    in_layer = pc.is_in(ids, value_set=layer_customers).to_numpy(zero_copy_only=False)
    wanted = ids.take(pa.array(given[~in_layer[given]]))  # their base rows leave the lists now
    base_customers, base_rows = record.customers, _base_rows(stored.base_handle, record, wanted)
    in_base = record.members(profile)[order]
    if in_layer.sum() < len(layer_customers) or in_base.sum() < len(base_customers):
        return None  # customers the model no longer has: written whole
    rebuilt = np.zeros(len(ids), dtype=bool)
    rebuilt[given] = True
    rebuilt |= ~(in_base | in_layer)  # customers the lists lack (new ones not named)
    if np.count_nonzero(rebuilt | in_layer) > MOST_REBUILT * max(len(ids), 1):
        return None
    rows = list_building.purchase_rows_of(model, ids)
    chosen = np.flatnonzero(rebuilt)
    chosen = np.concatenate([chosen[rows[chosen] >= 0], chosen[rows[chosen] < 0]])  # in `layout` order
    customers = list_building.customer_frame(model, order[chosen])
    built = list_building.build(model, n, only=chosen, rows=rows, customers=customers)
    fresh = [t.replace_schema_metadata(None) for t in built]
    fresh_table = pa.concat_tables(fresh) if fresh else SCHEMA.empty_table()
    again = pc.is_in(previous["user_id"], value_set=ids.filter(pa.array(rebuilt)))
    kept, replaced = previous.filter(pc.invert(again)), previous.filter(again)
    gone = pa.concat_tables([_summary_table(base_rows), _summary_table(replaced)])
    parts = stored.parts().combined(parts_of(gone), -1).combined(parts_of(_summary_table(fresh_table)))
    kept_tables = [pa.Table.from_batches([b]) for b in kept.replace_schema_metadata(None).to_batches(KEPT_ROWS)]
    extra = {list_layers.BASE_KEY: stored.base_id.encode(), list_layers.SUMMARY_KEY: parts.to_json().encode()}
    return [*kept_tables, *fresh], extra, int(np.count_nonzero(rebuilt))
