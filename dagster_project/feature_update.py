"""Bringing the stored feature tables up to date with new purchases: only the rows the purchases change.

A day of new purchases (27,000 at 10M, from 25,000 of 985,000 customers) changes few rows: the buyers'
pairs in the interaction table (bought again: updated; new: appended), the buyers' user-feature rows and
the bought products' item-feature rows. Everything else is the same, except `recency_days`, which counts
from the latest purchase of all and so moves for every customer (one vectorised column).

- **Interaction table**: read as Arrow columns (text stays Arrow text, never pandas objects, and the ids
  are not factorized); the buyers' rows are found with one `is_in` over the customer ids, their pairs
  matched with the new pairs, six numeric columns updated at those rows, the new pairs appended. The file
  is then written again whole. Why not a base file plus appended part files: a pair bought again changes
  a row of the base, so parts could only hold new pairs if readers merged rows per pair; every reader
  (`pd.read_parquet`, the IO manager, the tests) would need that merge, and the base would be rewritten
  anyway once the changed rows pile up. Reading and writing the 6.7M pairs as Arrow costs about 2 s of
  CPU at 10M; deriving every feature from them took the other 8 s (docs/BENCHMARKS.md), and that is what
  this module removes.
- **User features**: the stored table (one row per customer, in profile order) gets its buyers' rows
  counted again from the buyers' pairs alone, with the code of a full count (`features._user_stats`): sums
  over the same pairs in the same order, so each row is bit for bit what a count over the whole updated
  table gives; `recency_days` is recomputed for everyone.
- **Item features**: per product sums over every pair by catalogue code (`np.bincount`, the order a full
  count adds them in), the latest purchase as the stored one or the new pairs' latest. 20,000 products.

The caller checks first that the new purchases only extend what all three tables count (the same
`covers` on each, model_update.extension / older_purchases); otherwise it counts the whole history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project import features

ATTRS_KEY = b"PANDAS_ATTRS"  # where pandas keeps a frame's attrs in Parquet metadata (and so `covers`)
SUMS = ("purchases", "quantity", "spend")  # added up per pair
SPANS = (("first_purchase", np.minimum), ("last_purchase", np.maximum))
PAIR_COLUMNS = ["user_id", "product_id", "purchases", "quantity", "spend", "first_purchase", "last_purchase"]


@dataclass(frozen=True)
class Updated:
    """The three feature tables after an update: user and item features, the interaction table (Arrow)."""

    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pa.Table
    buyers: int  # customers whose rows were counted again
    new_pairs: int  # pairs appended (the rest of the new purchases updated pairs already there)
    new_customers: int  # customers with no pair in the table before


def stored_attrs(path: Path) -> dict:
    """A stored table's attrs from its Parquet metadata alone ({}: none, or unreadable)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(ATTRS_KEY)
        found = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def agreed_covers(paths: list[Path]) -> tuple[dict | None, str]:
    """What every one of the stored tables counts (`covers`), when they all say the same; else None and why.

    An update builds on all three tables at once, so tables from different counts (a run that stopped
    between two writes, a table restored by hand) must not be updated: the whole history is counted again.
    """
    if not all(Path(p).exists() for p in paths):
        return None, "the stored feature tables are not all there"
    found = [stored_attrs(p).get("covers") for p in paths]
    if any(f is None for f in found):
        return None, "the stored feature tables do not say which files they count"
    if any(f != found[0] for f in found[1:]):
        return None, "the stored feature tables do not count the same files"
    return found[0], ""


def with_attrs(table: pa.Table, attrs: dict) -> pa.Table:
    """`table` carrying `attrs` where pandas keeps them, so `pd.read_parquet(...).attrs` reads them back."""
    metadata = dict(table.schema.metadata or {})
    metadata[ATTRS_KEY] = json.dumps(attrs).encode()
    return table.replace_schema_metadata(metadata)


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric or time column as numpy (times as int64 of their unit), without a copy when it is one chunk."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if pa.types.is_timestamp(column.type):
        column = column.view(pa.int64())
    return column.to_numpy(zero_copy_only=False)


def _extended(column: pa.ChunkedArray, extra: np.ndarray) -> np.ndarray:
    """A new, writable array: the column's values (times as int64) followed by `extra`; one copy, chunk by chunk."""
    out = np.empty(len(column) + len(extra), dtype=extra.dtype)
    start = 0
    for chunk in column.chunks:
        out[start : start + len(chunk)] = _numpy(chunk)
        start += len(chunk)
    out[start:] = extra
    return out


def _arrow(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(kind):
        return pa.array(values, type=pa.int64()).view(kind)
    return pa.array(values, type=kind)


def _take(column: pa.ChunkedArray, rows: np.ndarray) -> pa.ChunkedArray:
    """`column.take(rows)` for ascending rows, chunk by chunk, so no chunk is joined to another first."""
    parts, start = [], 0
    for chunk in column.chunks:
        low, high = np.searchsorted(rows, [start, start + len(chunk)])
        if high > low:
            parts.append(chunk.take(pa.array(rows[low:high] - start)))
        start += len(chunk)
    return pa.chunked_array(parts, type=column.type)


def _codes(values: pa.ChunkedArray | pa.Array, uniques: pa.Array) -> np.ndarray:
    """Each value's position in `uniques` (-1: not there)."""
    return pc.index_in(values, value_set=uniques).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def add_pairs(table: pa.Table, transactions: pd.DataFrame) -> tuple[pa.Table, np.ndarray, int, int]:
    """`features.add_purchases` on an Arrow table: the updated table, the rows of every buyer's pairs (positions
    in the updated table, ascending: each buyer's pairs in table order), the pairs and the customers added."""
    fresh = features.interaction_table(transactions)
    fresh_table = pa.Table.from_pandas(fresh, schema=table.schema.remove_metadata(), preserve_index=False)
    n = table.num_rows
    buyers, bought = (pc.unique(fresh_table[name]) for name in ("user_id", "product_id"))
    rows = np.flatnonzero(pc.is_in(table["user_id"], value_set=buyers).to_numpy(zero_copy_only=False))
    # pairs as integer keys over the new purchases' customers and products: the buyers' stored pairs whose
    # product nobody bought today get no key (-1) and match nothing
    width = max(len(bought), 1)
    product = _codes(_take(table["product_id"], rows), bought)
    customer = _codes(_take(table["user_id"], rows), buyers)
    stored_keys = np.where(product >= 0, customer * width + product, -1)
    new_customers = len(buyers) - len(np.unique(customer))
    fresh_keys = _codes(fresh_table["user_id"], buyers) * width + _codes(fresh_table["product_id"], bought)
    found = pd.Index(fresh_keys).get_indexer(stored_keys)
    at, new = rows[found >= 0], found[found >= 0]
    added = np.setdiff1d(np.arange(len(fresh)), new)  # in order of first purchase, as `add_purchases` appends
    columns: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        old, kind = table[name], table.schema.field(name).type
        if name in ("user_id", "product_id"):
            columns[name] = pa.chunked_array([*old.chunks, *fresh_table[name].take(added).chunks], type=kind)
            continue
        incoming = _numpy(fresh_table[name])
        values = _extended(old, incoming[added])
        if name in SUMS:
            values[at] += incoming[new]
        elif name in dict(SPANS):
            values[at] = dict(SPANS)[name](values[at], incoming[new])
        elif name == "confidence":
            values[at] = np.log1p(_numpy(columns["purchases"])[at].astype("float64"))
        columns[name] = pa.chunked_array([_arrow(values, kind)])
    out = pa.table(columns, schema=table.schema)
    buyer_rows = np.concatenate([rows, np.arange(n, n + len(added))])
    return out, buyer_rows, len(added), new_customers


def _pairs_frame(table: pa.Table, rows: np.ndarray) -> pd.DataFrame:
    """The pairs at `rows` as pandas columns (text as Arrow-backed strings)."""
    return pa.table({name: _take(table[name], rows) for name in PAIR_COLUMNS}).to_pandas()


def _latest(table: pa.Table) -> pd.Timestamp | None:
    found = pc.max(table["last_purchase"]).as_py()
    return None if found is None else pd.Timestamp(found)


def update_users(
    stored: pd.DataFrame, table: pa.Table, buyer_rows: np.ndarray, products: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The stored user features with the buyers' rows counted again from their pairs and everyone's recency."""
    as_of = _latest(table)
    pairs = features._Pairs.of(_pairs_frame(table, buyer_rows))
    stats = features._user_stats(pairs, products, as_of)
    out = stored.copy(deep=False)
    ids = pa.array(stats.index.to_numpy(dtype=object), type=pa.large_string())
    at = _codes(ids, pa.array(out["user_id"]).cast(pa.large_string()))
    known = np.flatnonzero(at >= 0)  # a buyer missing from the customers file has no row, as in a full count
    at, stats = at[known], stats.iloc[known]
    for column in features.USER_STATS:
        if column == "recency_days":
            continue
        values = out[column].copy()
        values.iloc[at] = stats[column].array
        out[column] = values
    out["recency_days"] = features.recency_days(out["last_purchase"], as_of) if as_of is not None else np.nan
    return out, len(at)


def item_features(table: pa.Table, products: pd.DataFrame) -> pd.DataFrame:
    """`features._item_features` of the whole table on catalogue codes: no text hashed per pair, no pandas group-by.

    Sums run over the pairs in table order, as a full count adds them; pairs of products outside the
    catalogue count for nothing, as the full count's join with the catalogue drops them.
    """
    catalogue = pa.array(products["product_id"].to_numpy(dtype=object), type=table.schema.field("product_id").type)
    found = pc.index_in(table["product_id"], value_set=catalogue)
    known = found.is_valid().to_numpy(zero_copy_only=False)
    every = bool(known.all())
    codes = found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = codes if every else codes[known]
    n = len(catalogue)

    def column(name: str) -> np.ndarray:
        values = _numpy(table[name])
        return values if every else values[known]

    def total(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=n)

    purchases = column("purchases")
    buyers = total()
    present = np.flatnonzero(buyers > 0)
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, codes, column("last_purchase"))
    kind = table.schema.field("last_purchase").type
    stats = pd.DataFrame(
        {
            "purchases": total(purchases.astype("float64"))[present].round().astype("int64"),
            "total_quantity": total(column("quantity").astype("float64"))[present].round().astype("int64"),
            "revenue": total(np.nan_to_num(column("spend"), nan=0.0))[present],
            "last_purchase": _arrow(latest[present], kind).to_pandas().array,
            "buyers": buyers[present].astype("int64"),
            "repeat_buyer_share": total((purchases > 1).astype("float64"))[present] / buyers[present],
        },
        index=pd.Index(products["product_id"]).take(present).rename("product_id"),
    )
    return features.item_table(stats, products)


def update(
    stored_users: pd.DataFrame, interactions: pa.Table, transactions: pd.DataFrame, products: pd.DataFrame
) -> Updated:
    """The three feature tables with `transactions` (purchases after all those counted) added."""
    table, buyer_rows, new_pairs, new_customers = add_pairs(interactions, transactions)
    del interactions
    users, buyers = update_users(stored_users, table, buyer_rows, products)
    return Updated(users, item_features(table, products), table, buyers, new_pairs, new_customers)
