"""Updating the stored customer lists after a model update: only the customers who bought get new lists.

A model updated with new purchases keeps its product side as trained (factors, neighbours, popularity, catalogue)
and changes only the purchase rows of the customers who bought (new customers appended). Only their lists
change, so only theirs are built again (`list_building.build(only=...)`: the rows a build of everyone gives
them), and the file is rewritten with every other customer's rows copied from the stored one, in the order
and the row groups a full write gives: the result equals `customer_lists.write_for_model`'s file, read as a
table (tests/test_list_update.py). Customers move in that order when their purchase count changes, so
nearly every row group changes: the stored file is read one row group at a time and every row is encoded
again (at 10M purchases, 19.7M rows, 25,000 customers who bought: 37 s of CPU against 74 for a full write on a
busy machine, the floor being about 17 s to decode and encode the rows; docs/BENCHMARKS.md, "Updating the
lists", also says why not a layer of changes beside the file).

The file says what it came from (`lineage`, under list_building.LINEAGE_KEY): an update builds only on lists
of the same trained model, from its previous update or this one; anything else is for a full write.

Imports no Dagster; `customer_lists.update_for_model` is the interface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project import list_building
from dagster_project.contract import id_key
from dagster_project.list_building import LINEAGE_KEY, LISTS, SCHEMA
from dagster_project.recommender import RecommenderModel

# Above this share of customers to build again, a full write costs about the same: it is done instead.
MOST_REBUILT = 0.5


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


@dataclass(frozen=True)
class _Plan:
    """Where every row of the new file comes from."""

    order: np.ndarray  # every customer (position in model.customers()) in the order of a full write: their rank
    ids: pa.Array  # their ids, in that order
    bounds: np.ndarray  # ranks where each block (a pair of row groups) starts, and the end
    old_rows: dict[str, np.ndarray]  # per list: the stored rows kept (row numbers), ascending
    old_ranks: dict[str, np.ndarray]  # and their customers' ranks (ascending too: customers keep their order)
    rebuilt: np.ndarray  # ranks of the customers whose lists are built again


def _ranks(column: pa.ChunkedArray, ids: pa.Array) -> np.ndarray:
    """Each row's position in `ids` (-1 where it is not there), from a column read as dictionaries (one look-up
    per distinct value of a row group, not per row)."""
    chunks = [chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode() for chunk in column.chunks]
    out = np.empty(len(column), dtype=np.int32)
    if not chunks:
        return out
    found = pc.index_in(pa.concat_arrays([c.dictionary for c in chunks]), value_set=ids)
    found = np.append(found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32), -1)  # last: null rows
    start = row = 0
    for chunk in chunks:
        indices = chunk.indices.fill_null(len(found) - 1 - start) if chunk.null_count else chunk.indices
        out[row : row + len(chunk)] = found[start + indices.to_numpy(zero_copy_only=False)]
        start, row = start + len(chunk.dictionary), row + len(chunk)
    return out


def _ids(user_ids: Iterable[object], ids: pa.Array) -> np.ndarray:
    """The ranks of the given customers (stored ids as they are, others normalized); ids not there are left out."""
    given = [u if isinstance(u, str) else id_key(u) for u in user_ids]
    found = pc.index_in(pa.array(given, pa.string()), value_set=ids).to_numpy(zero_copy_only=False)
    missing = [i for i, rank in enumerate(found) if pd.isna(rank)]
    if missing:  # text ids not in stored form ("  1001 ")
        again = pc.index_in(pa.array([id_key(given[i]) for i in missing], pa.string()), value_set=ids)
        found = np.concatenate([found[~pd.isna(found)], again.to_numpy(zero_copy_only=False)])
    return found[~pd.isna(found)].astype(np.int64)


def plan(model: RecommenderModel, path: Path, user_ids: Iterable[object]) -> _Plan | None:
    """Which stored rows to keep and which customers to build again; None when the stored file cannot be built on
    (rows of another kind, or customers in another order)."""
    customers = model.customers()
    blocks = list_building.layout(list_building.purchase_rows(model, customers))
    order = np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)
    bounds = np.cumsum([0, *map(len, blocks)])
    ids = pa.array(customers["user_id"], pa.string(), from_pandas=True).take(pa.array(order))
    rebuilt = np.zeros(len(ids), dtype=bool)
    rebuilt[_ids(user_ids, ids)] = True
    stored = pq.read_table(path, columns=["user_id", "list"], read_dictionary=["user_id", "list"])
    rank = _ranks(stored["user_id"], ids)
    kind = _ranks(stored["list"], pa.array(LISTS, pa.string())).astype(np.int8)
    del stored
    if (kind < 0).any():
        return None
    kept = rank >= 0  # customers the model no longer has are left out
    for code in range(len(LISTS)):  # customers the stored file lacks on a list (or empty there) are built again
        listed = np.zeros(len(ids), dtype=bool)
        listed[rank[kept & (kind == code)]] = True
        rebuilt |= ~listed
    kept[kept] = ~rebuilt[rank[kept]]
    old_rows, old_ranks = {}, {}
    for code, name in enumerate(LISTS):
        rows = np.flatnonzero(kept & (kind == code))
        ranks = rank[rows]
        if ranks.size and (np.diff(ranks) < 0).any():
            return None
        old_rows[name], old_ranks[name] = rows, ranks
    return _Plan(order, ids, bounds, old_rows, old_ranks, np.flatnonzero(rebuilt))


def _fresh(tables: Iterable[pa.Table], plan: _Plan) -> dict[str, tuple[pa.Table, np.ndarray]]:
    """The rebuilt customers' rows per list, with each row's customer rank (ascending: built in that order)."""
    parts: dict[str, list[pa.Table]] = {name: [] for name in LISTS}
    for table in tables:
        if table.num_rows:
            parts[table["list"][0].as_py()].append(table.replace_schema_metadata(None))
    rebuilt_ids = plan.ids.take(pa.array(plan.rebuilt))
    fresh = {}
    for name, tables_of_list in parts.items():
        table = pa.concat_tables(tables_of_list) if tables_of_list else SCHEMA.empty_table()
        ranks = plan.rebuilt[_ranks(table["user_id"], rebuilt_ids)] if table.num_rows else np.empty(0, np.int64)
        fresh[name] = (table, ranks)
    return fresh


class _StoredRows:
    """The stored file's rows as slices of its row groups (no copy), read a row group at a time as the merge moves
    forward through both lists (their row groups alternate), and dropped once neither list needs them."""

    def __init__(self, path: Path) -> None:
        self.file = pq.ParquetFile(path)
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.groups: dict[int, pa.Table] = {}
        self.reached = dict.fromkeys(LISTS, 0)

    def slices(self, start: int, stop: int) -> list[pa.Table]:
        """Rows start to stop - 1."""
        group, out = int(np.searchsorted(self.starts, start, side="right")) - 1, []
        while start < stop:
            if group not in self.groups:
                self.groups[group] = self.file.read_row_group(group).replace_schema_metadata(None).cast(SCHEMA)
            end = min(stop, int(self.starts[group + 1]))
            out.append(self.groups[group].slice(start - self.starts[group], end - start))
            start, group = end, group + 1
        return out

    def done_before(self, row: int, name: str) -> None:
        """Rows before `row` are no longer needed for list `name`."""
        self.reached[name] = int(np.searchsorted(self.starts, row, side="right")) - 1
        for group in [g for g in self.groups if g < min(self.reached.values())]:
            del self.groups[group]


def _runs(fresh: np.ndarray, index: np.ndarray) -> Iterator[tuple[bool, int, int]]:
    """(from the rebuilt rows?, first row, length) of each run of consecutive rows of one source."""
    breaks = np.flatnonzero((np.diff(fresh) != 0) | (np.diff(index) != 1)) + 1
    firsts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [index.size]])
    return zip(fresh[firsts].tolist(), index[firsts].tolist(), (ends - firsts).tolist())


def merged(path: Path, plan: _Plan, fresh: dict[str, tuple[pa.Table, np.ndarray]]) -> Iterator[pa.Table]:
    """The new file's tables, one per row group as a full write makes them: per block of customers, each list's
    rows, the stored ones and the rebuilt ones in the customers' order, as slices of both (nothing copied: the
    cost is decoding the stored row groups and encoding the new ones)."""
    stored = _StoredRows(path)
    for start, end in zip(plan.bounds[:-1], plan.bounds[1:]):
        for name in LISTS:
            old_ranks, old_rows, (new, new_ranks) = plan.old_ranks[name], plan.old_rows[name], fresh[name]
            # (the bounds in the ranks' own type: else numpy converts the whole array on every search)
            a, b = np.searchsorted(old_ranks, np.array([start, end], dtype=old_ranks.dtype))
            c, d = np.searchsorted(new_ranks, np.array([start, end], dtype=new_ranks.dtype))
            order = np.argsort(np.concatenate([old_ranks[a:b], new_ranks[c:d]]), kind="stable")
            is_new = order >= b - a
            index = np.empty(order.size, dtype=np.int64)
            index[is_new] = order[is_new] - (b - a) + c
            index[~is_new] = old_rows[a:b][order[~is_new]]
            pieces = []
            for rebuilt, first, length in _runs(is_new, index) if index.size else ():
                pieces += [new.slice(first, length)] if rebuilt else stored.slices(first, first + length)
            stored.done_before(int(old_rows[b]) if b < old_rows.size else int(stored.starts[-1]), name)
            yield pa.concat_tables(pieces) if pieces else SCHEMA.empty_table()


def update(model: RecommenderModel, path: Path, user_ids: Iterable[object], n: int, catalogue: dict) -> int | None:
    """Rewrite the stored lists at `path` for `model`, building again only the given customers' lists (and any
    the file lacks); how many customers were built again, or None when the file cannot be built on (no file,
    lists of another model, too many to build again) and nothing was written."""
    path = Path(path)
    current = lineage(model, n)
    if not path.is_file() or not builds_on(stored_lineage(path), current):
        return None
    found = plan(model, path, user_ids)
    if found is None or found.rebuilt.size > MOST_REBUILT * max(len(found.ids), 1):
        return None
    fresh = _fresh(list_building.build(model, n, only=found.order[found.rebuilt]), found)
    list_building.write(merged(path, found, fresh), path, catalogue, current)
    return int(found.rebuilt.size)
