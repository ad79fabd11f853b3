"""Bringing the stored feature tables up to date with new purchases: only the rows the purchases change.

A day of new purchases (27,000 at 10M, from 25,000 of 985,000 customers) changes few rows: the buyers'
pairs in the interaction table (bought again: updated; new: appended), the buyers' user-feature rows and
the bought products' item figures. Everything else stays, except `recency_days`, which counts from the
latest purchase of all and so moves for every customer (one vectorised column).

- **Interaction table** (6.7M pairs at 10M): one pass over the stored Parquet file, one row group (a
  million pairs) at a time, writing the new file beside it as it goes: in each group the day's buyers'
  rows are found with Arrow's `is_in`, their pairs matched with the day's pairs on integer codes, six
  numeric columns updated at those rows; the pairs nobody had bought go at the end. Text stays Arrow text
  (never pandas objects) and no id is factorized. Memory: two row groups, not the table (the step held
  1.5 GB more before). Why not a base file plus appended part files: a pair bought again changes a row
  of the base, so parts could only hold new pairs if every reader (`pd.read_parquet`, the IO manager,
  the tests) merged rows per pair, and the base would have to be rewritten once changes piled up. Reading
  and writing the pairs is then the floor: about 1.3 s of CPU at 10M in the layout `interaction_file.py` sets
  (2.0 s before it, docs/BENCHMARKS.md).
- **User features**: the stored table (one row per customer, in profile order) gets its buyers' rows
  counted again from the buyers' pairs alone, with the code of a full count (`features._user_stats`): sums
  over the same pairs in the same order, so each row is bit for bit what a count over the whole updated
  table gives; `recency_days` is recomputed for everyone.
- **Item features**: per catalogue product, sums over every pair gathered during the same pass (whole
  numbers by `np.bincount` per row group, money added one pair at a time in table order, as a full count
  adds it), the latest purchase by `np.maximum.at`. 20,000 products.

The caller checks first that the new purchases only extend what all three tables count (the same
`covers` on each, `agreed_covers`, model_update.extension / older_purchases); otherwise it counts the
whole history.
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

from dagster_project import features, interaction_file
from dagster_project.interaction_file import ATTRS_KEY, with_attrs

SUMS = ("purchases", "quantity", "spend")  # added up per pair
SPANS = (("first_purchase", np.minimum), ("last_purchase", np.maximum))
PAIR_COLUMNS = ["user_id", "product_id", "purchases", "quantity", "spend", "first_purchase", "last_purchase"]


@dataclass(frozen=True)
class Updated:
    """The three feature tables after an update: user and item features, the interaction table (Arrow)."""

    users: pd.DataFrame
    items: pd.DataFrame
    preview: pd.DataFrame  # the interaction table's first rows (the table itself is written, not held)
    pairs: int  # the interaction table's rows
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


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric or time column as numpy (times as int64 of their unit), without a copy when it is one chunk."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if pa.types.is_timestamp(column.type):
        column = column.view(pa.int64())
    return column.to_numpy(zero_copy_only=False)


def _arrow(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(kind):
        return pa.array(values, type=pa.int64()).view(kind)
    return pa.array(values, type=kind)


def _codes(values: pa.ChunkedArray | pa.Array, uniques: pa.Array) -> np.ndarray:
    """Each value's position in `uniques` (-1: not there)."""
    return pc.index_in(values, value_set=uniques).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass
class _Day:
    """The day's pairs, keyed by integer codes over the day's own customers and products."""

    table: pa.Table
    buyers: pa.Array
    bought: pa.Array
    keys: pd.Index
    matched: np.ndarray  # per new pair: found among the stored pairs
    seen: np.ndarray  # per buyer: has stored pairs

    @classmethod
    def of(cls, transactions: pd.DataFrame, schema: pa.Schema) -> _Day:
        schema = schema.remove_metadata()
        if transactions is None or transactions.empty:
            table = schema.empty_table()
        else:
            table = pa.Table.from_pandas(features.interaction_table(transactions), schema=schema, preserve_index=False)
        buyers, bought = (pc.unique(table[name]) for name in ("user_id", "product_id"))
        keys = _codes(table["user_id"], buyers) * max(len(bought), 1) + _codes(table["product_id"], bought)
        return cls(table, buyers, bought, pd.Index(keys), np.zeros(len(table), bool), np.zeros(len(buyers), bool))

    def added(self) -> pa.Table:
        """The new pairs not found among the stored ones, in order of first purchase (as `add_purchases` appends)."""
        return self.table.take(pa.array(np.flatnonzero(~self.matched)))

    def update(self, group: pa.Table) -> tuple[pa.Table, np.ndarray]:
        """One row group of the stored pairs with the day's purchases added, and the rows of the day's buyers."""
        rows = np.flatnonzero(pc.is_in(group["user_id"], value_set=self.buyers).to_numpy(zero_copy_only=False))
        customer = _codes(group["user_id"].take(pa.array(rows)), self.buyers)
        product = _codes(group["product_id"].take(pa.array(rows)), self.bought)
        self.seen[customer] = True
        # a buyer's stored pair whose product nobody bought today has no key (-1) and matches nothing
        found = self.keys.get_indexer(np.where(product >= 0, customer * max(len(self.bought), 1) + product, -1))
        at, new = rows[found >= 0], found[found >= 0]
        self.matched[new] = True
        if not len(at):
            return group, rows
        columns = {}
        for name in group.column_names:
            if name in ("user_id", "product_id"):
                columns[name] = group[name]
                continue
            values = _numpy(group[name]).copy()
            if name in SUMS:
                values[at] += _numpy(self.table[name])[new]
            elif name in dict(SPANS):
                values[at] = dict(SPANS)[name](values[at], _numpy(self.table[name])[new])
            elif name == "confidence":
                values[at] = np.log1p(_numpy(columns["purchases"])[at].astype("float64"))
            columns[name] = _arrow(values, group.schema.field(name).type)
        return pa.table(columns, schema=group.schema), rows


class _ItemSums:
    """Per catalogue product, sums over the pairs in table order (what `np.bincount` over the whole table adds)."""

    def __init__(self, products: pd.DataFrame, kind: pa.DataType):
        self.products = products
        self.catalogue = pa.array(products["product_id"].to_numpy(dtype=object), type=kind)
        n = len(self.catalogue)
        self.sums = {name: np.zeros(n) for name in ("buyers", "purchases", "quantity", "spend", "repeat")}
        self.latest = np.full(n, np.iinfo(np.int64).min)

    def add(self, group: pa.Table) -> None:
        found = pc.index_in(group["product_id"], value_set=self.catalogue)
        known = found.is_valid().to_numpy(zero_copy_only=False)
        every = bool(known.all())
        codes = found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = codes if every else codes[known]

        def column(name: str) -> np.ndarray:
            values = _numpy(group[name])
            return values if every else values[known]

        purchases = column("purchases")
        n = len(self.catalogue)
        counts = {  # whole numbers: exact in any order, one bincount per row group
            "buyers": None,
            "purchases": purchases.astype("float64"),
            "quantity": column("quantity").astype("float64"),
            "repeat": (purchases > 1).astype("float64"),
        }
        for name, weights in counts.items():
            self.sums[name] += np.bincount(codes, weights=weights, minlength=n)
        # money: added in row order, one at a time, onto the sums so far (the additions a full count makes)
        np.add.at(self.sums["spend"], codes, np.nan_to_num(column("spend"), nan=0.0))
        np.maximum.at(self.latest, codes, column("last_purchase"))

    def table(self, kind: pa.DataType) -> pd.DataFrame:
        """`features._item_features` of every pair added."""
        buyers = self.sums["buyers"]
        present = np.flatnonzero(buyers > 0)
        stats = pd.DataFrame(
            {
                "purchases": self.sums["purchases"][present].round().astype("int64"),
                "total_quantity": self.sums["quantity"][present].round().astype("int64"),
                "revenue": self.sums["spend"][present],
                "last_purchase": _arrow(self.latest[present], kind).to_pandas().array,
                "buyers": buyers[present].astype("int64"),
                "repeat_buyer_share": self.sums["repeat"][present] / buyers[present],
            },
            index=pd.Index(self.products["product_id"]).take(present).rename("product_id"),
        )
        return features.item_table(stats, self.products)


@dataclass(frozen=True)
class _Pass:
    """What one pass over the interaction table gathers besides the table it writes."""

    buyer_pairs: pd.DataFrame  # every pair of the day's buyers, in table order
    items: pd.DataFrame  # the item features of every pair
    pairs: int
    new_pairs: int
    new_customers: int
    preview: pd.DataFrame  # the table's first rows
    latest: pd.Timestamp | None  # the latest purchase of all


def update_interactions(
    source: Path, target: Path, transactions: pd.DataFrame, products: pd.DataFrame, attrs: dict
) -> _Pass:
    """Write the stored interaction table at `source` with `transactions` added to `target`, one row group at a time.

    Memory: two row groups (about a million pairs each), not the table. Pairs bought again are updated where
    they are; new pairs go at the end, as `features.add_purchases` does.
    """
    with pq.ParquetFile(source) as stored:
        schema = stored.schema_arrow
        day = _Day.of(transactions, schema)
        items = _ItemSums(products, schema.field("product_id").type)
        kind = schema.field("last_purchase").type
        buyer_parts: list[pa.Table] = []
        preview: pd.DataFrame | None = None
        latest: list = []
        held: pa.Table | None = None  # the last row group is written with the new pairs, once they are known
        with interaction_file.writer(target, with_attrs(schema, attrs)) as writer:
            for index in range(stored.num_row_groups):
                group, rows = day.update(stored.read_row_group(index).replace_schema_metadata(None))
                buyer_parts.append(group.select(PAIR_COLUMNS).take(pa.array(rows)))
                items.add(group)
                latest.append(pc.max(group["last_purchase"]).as_py())
                if held is not None:
                    writer.write_table(held)
                held = group
                preview = group.slice(0, 5).to_pandas() if preview is None else preview
            added = day.added()
            items.add(added)
            buyer_parts.append(added.select(PAIR_COLUMNS))
            latest.append(pc.max(added["last_purchase"]).as_py())
            last = pa.concat_tables([held, added]) if held is not None else added
            writer.write_table(last)
            preview = last.slice(0, 5).to_pandas() if preview is None else preview
    found = [t for t in latest if t is not None]
    return _Pass(
        pa.concat_tables(buyer_parts).to_pandas(),
        items.table(kind),
        stored.metadata.num_rows + added.num_rows,
        added.num_rows,
        int((~day.seen).sum()),
        preview,
        pd.Timestamp(max(found)) if found else None,
    )


def update_users(
    stored: pd.DataFrame, buyer_pairs: pd.DataFrame, products: pd.DataFrame, as_of: pd.Timestamp | None
) -> tuple[pd.DataFrame, int]:
    """The stored user features with the buyers' rows counted again from their pairs and everyone's recency.

    The stored rows are found by looking each customer up among the day's buyers (a set of 25,000 ids at
    10M), not the buyers among every customer: hashing a million ids cost 0.2 s of CPU at 10M, probing 0.02.
    """
    stats = features._user_stats(features._Pairs.of(buyer_pairs), products, as_of)
    out = stored.copy(deep=False)
    customers = pa.array(out["user_id"])
    found = _codes(customers, pa.array(stats.index.to_numpy(dtype=object), type=customers.type))
    # a buyer missing from the customers file has no row, as in a full count
    at = np.flatnonzero(found >= 0)
    stats = stats.iloc[found[at]]
    for column in features.USER_STATS:
        if column == "recency_days":
            continue
        values = out[column].copy()
        values.iloc[at] = stats[column].array
        out[column] = values
    out["recency_days"] = features.recency_days(out["last_purchase"], as_of) if as_of is not None else np.nan
    return out, len(at)


def update(
    stored_users: pd.DataFrame,
    source: Path,
    target: Path,
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    attrs: dict,
) -> Updated:
    """The three feature tables with `transactions` (purchases after all those counted) added; the interaction
    table written to `target` (with `attrs`), the user and item features returned."""
    done = update_interactions(source, target, transactions, products, attrs)
    users, buyers = update_users(stored_users, done.buyer_pairs, products, done.latest)
    return Updated(users, done.items, done.preview, done.pairs, buyers, done.new_pairs, done.new_customers)
