"""Sample transactions for sizes that do not fit in memory at once, generated chunk by chunk.

The one-piece generator (`sample_data.make_transactions`) draws every row from one random stream, sorts
all rows by customer and shuffles them as a whole, so it needs every row in memory (4 GB at 10 million).
Here the same shop is drawn in chunks of whole customers, in customer order:

- how many purchases each customer makes is one multinomial draw over the customers' activity (the
  same distribution as sorting one draw per row), so a chunk knows its rows without the others;
- every other random value of a row (time, product, repeat, quantity, discount) is a hash of the row's
  number, so a row is the same whatever chunk it falls in and the content does not depend on the
  chunk size; only the order of rows in the file does (rows are shuffled within their chunk);
- the defect positions are drawn once for the whole size (3 % of the rows, kept as row numbers: 24 MB
  at 100 million).

Memory is bounded by the chunk, plus per-customer arrays and the defect positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sample_data import (
    N_SEGMENTS,
    REPEAT_RATE,
    WINDOW_SECONDS,
    WINDOW_START,
    DefectRates,
    _pick,
    _segment_item_weights,
)

DAY_SECONDS = 24 * 3600
QUANTITY_MEAN = 0.4  # extra items per line, Poisson (as in the one-piece generator)
DISCOUNTS = np.array([1.0, 0.9, 0.8])
DISCOUNT_CDF = np.array([0.8, 0.95])
# One stream of hashed numbers per random property of a row.
TIME, PRODUCT, REPEAT, QUANTITY, DISCOUNT, SHUFFLE = range(1, 7)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a well-spread 64-bit hash of each value."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _MIX1
        x = x ^ (x >> np.uint64(27))
        x = x * _MIX2
        return x ^ (x >> np.uint64(31))


def uniform(key: int, stream: int, rows: np.ndarray) -> np.ndarray:
    """One number in [0, 1) per row number, a function of (key, stream, row) only."""
    base = _mix(np.array([key ^ (stream * 0xD1B54A32D192ED03 % 2**64)], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        x = _mix(rows.astype(np.uint64) * _GOLDEN + base)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _poisson_cdf(mean: float, top: int = 40) -> np.ndarray:
    terms = [math.exp(-mean) * mean**k / math.factorial(k) for k in range(top)]
    return np.cumsum(terms)[:-1]


@dataclass(frozen=True)
class TransactionPlan:
    """What every chunk shares: the customers' purchase counts and segments, the catalog, the defects."""

    n: int
    key: int
    user_ids: np.ndarray
    segment: np.ndarray
    starts: np.ndarray  # row number of each customer's first purchase; starts[-1] == n
    item_cdf: np.ndarray  # per segment, the cumulative purchase probability over the catalog
    product_ids: pa.Array
    prices: np.ndarray
    defect_rows: dict[str, np.ndarray]  # defect -> sorted row numbers
    unknown_user: int
    bad_quantity: int
    bad_timestamp: str
    first_second: int = 0  # the rows' times, in seconds after the window's start: [first, first + span)
    span_seconds: int = WINDOW_SECONDS
    first_number: int = 0  # transaction ids continue after this number

    def chunks(self, chunk_rows: int) -> list[tuple[int, int]]:
        """Customer ranges [first, end) holding about `chunk_rows` rows each (whole customers only)."""
        targets = np.arange(chunk_rows, self.n, chunk_rows)
        cuts = np.unique(np.searchsorted(self.starts, targets, side="left"))
        cuts = cuts[(cuts > 0) & (cuts < len(self.user_ids))]
        edges = [0, *cuts.tolist(), len(self.user_ids)]
        return list(zip(edges[:-1], edges[1:]))


def plan_transactions(
    n: int, users: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator, defects: DefectRates
) -> TransactionPlan:
    """The shared draws of `n` rows over the window; the same first draws as the one-piece generator, so
    the customers' segments and activity follow the seed the same way in both."""
    user_ids = users["user_id"].to_numpy().astype(np.int64)
    segment = rng.integers(0, N_SEGMENTS, len(user_ids))
    activity = rng.lognormal(0.0, 1.0, len(user_ids))
    counts = rng.multinomial(n, activity / activity.sum())
    weights = _segment_item_weights(products, rng)
    return _plan(n, user_ids, segment, counts, weights, products, rng, defects)


def plan_next_day(
    base_n: int,
    n: int,
    one_piece: bool,
    users: pd.DataFrame,
    products: pd.DataFrame,
    rng: np.random.Generator,
    defects: DefectRates,
) -> TransactionPlan:
    """`n` rows on the day after the window of a dataset of `base_n` rows made from the same seed: the
    same customers, with the segments, activity and tastes that dataset drew (its draws are replayed,
    `one_piece` telling which generator made it), and transaction ids continuing after its last."""
    user_ids = users["user_id"].to_numpy().astype(np.int64)
    segment = rng.integers(0, N_SEGMENTS, len(user_ids))
    activity = rng.lognormal(0.0, 1.0, len(user_ids))
    p = activity / activity.sum()
    if one_piece:  # sample_data.make_transactions's draws before its tastes
        rng.choice(len(user_ids), base_n, p=p)
        rng.integers(0, WINDOW_SECONDS, base_n)
    else:
        rng.multinomial(base_n, p)
    weights = _segment_item_weights(products, rng)
    counts = rng.multinomial(n, p)
    plan = _plan(n, user_ids, segment, counts, weights, products, rng, defects)
    return replace(plan, first_second=WINDOW_SECONDS, span_seconds=DAY_SECONDS, first_number=base_n)


def _plan(
    n: int,
    user_ids: np.ndarray,
    segment: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    products: pd.DataFrame,
    rng: np.random.Generator,
    defects: DefectRates,
) -> TransactionPlan:
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    rows = {
        "unknown_user": _pick(rng, n, defects.unknown_user, n),
        "unknown_product": _pick(rng, n, defects.unknown_product, n),
        "bad_quantity": _pick(rng, n, defects.bad_quantity, n),
        "bad_timestamp": _pick(rng, n, defects.bad_timestamp, n),
    }
    return TransactionPlan(
        n=n,
        key=int(rng.integers(2**63)),
        user_ids=user_ids,
        segment=segment,
        starts=np.r_[0, np.cumsum(counts)],
        item_cdf=cdf,
        product_ids=pa.array(products["product_id"].to_numpy().astype(str)),
        prices=products["price"].abs().to_numpy(),
        defect_rows={k: np.sort(v) for k, v in rows.items()},
        unknown_user=999_000 + int(rng.integers(0, 999)),
        bad_quantity=int(rng.choice([0, -1, -2])),
        bad_timestamp=str(rng.choice(["not a date", "2026-13-45 25:61:00", ""])),
    )


def _in_range(rows: np.ndarray, first: int, end: int) -> np.ndarray:
    """Positions within the chunk [first, end) of the sorted global row numbers that fall in it."""
    lo, hi = np.searchsorted(rows, [first, end])
    return rows[lo:hi] - first


def make_chunk(plan: TransactionPlan, first_user: int, end_user: int) -> tuple[pa.Table, np.ndarray]:
    """The rows of customers [first_user, end_user), shuffled, and each row's day number in the window."""
    first, end = int(plan.starts[first_user]), int(plan.starts[end_user])
    rows = np.arange(first, end, dtype=np.int64)
    user = np.repeat(np.arange(first_user, end_user), np.diff(plan.starts[first_user : end_user + 1]))
    seconds = plan.first_second + (uniform(plan.key, TIME, rows) * plan.span_seconds).astype(np.int64)
    seconds = seconds[np.lexsort((seconds, user))]  # each customer's purchases in time order

    draw = uniform(plan.key, PRODUCT, rows)
    item = np.empty(rows.size, dtype=np.int64)
    txn_segment = plan.segment[user]
    for s in range(N_SEGMENTS):
        chosen = np.flatnonzero(txn_segment == s)
        item[chosen] = np.searchsorted(plan.item_cdf[s], draw[chosen], side="right")
    np.minimum(item, plan.item_cdf.shape[1] - 1, out=item)
    # Repeat purchases: a share of each customer's later purchases buy again their last new item.
    first_of_user = np.r_[True, user[1:] != user[:-1]]
    fresh = first_of_user | (uniform(plan.key, REPEAT, rows) >= REPEAT_RATE)
    item = item[np.maximum.accumulate(np.where(fresh, np.arange(rows.size), 0))]

    quantity = 1 + np.searchsorted(_poisson_cdf(QUANTITY_MEAN), uniform(plan.key, QUANTITY, rows), side="right")
    discount = DISCOUNTS[np.searchsorted(DISCOUNT_CDF, uniform(plan.key, DISCOUNT, rows), side="right")]
    unit_price = np.round(plan.prices[item] * discount, 2)
    user_id = plan.user_ids[user]
    product = plan.product_ids.take(pa.array(item))
    times = pa.array(WINDOW_START + seconds.astype("timedelta64[s]"), type=pa.timestamp("s"))
    timestamp = pc.strftime(times, format="%Y-%m-%d %H:%M:%S")

    user_id[_in_range(plan.defect_rows["unknown_user"], first, end)] = plan.unknown_user
    quantity[_in_range(plan.defect_rows["bad_quantity"], first, end)] = plan.bad_quantity
    product = _replace(product, _in_range(plan.defect_rows["unknown_product"], first, end), "P-UNKNOWN")
    timestamp = _replace(timestamp, _in_range(plan.defect_rows["bad_timestamp"], first, end), plan.bad_timestamp)

    width = max(7, len(str(plan.first_number + plan.n)))
    numbers = pc.utf8_lpad(pa.array(plan.first_number + rows + 1).cast(pa.string()), width=width, padding="0")
    table = pa.table(
        {
            "transaction_id": pc.binary_join_element_wise("T", numbers, ""),
            "user_id": pa.array(user_id).cast(pa.string()),
            "product_id": product,
            "quantity": pa.array(quantity),
            "unit_price": pa.array(unit_price),
            "timestamp": timestamp,
        }
    )
    order = np.argsort(uniform(plan.key, SHUFFLE, rows))
    return table.take(pa.array(order)), (seconds // DAY_SECONDS)[order]


def _replace(values: pa.Array, positions: np.ndarray, text: str) -> pa.Array:
    if not positions.size:
        return values
    mask = np.zeros(len(values), dtype=bool)
    mask[positions] = True
    return pc.if_else(pa.array(mask), pa.scalar(text, values.type), values)


def stream_transactions(plan: TransactionPlan, chunk_rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Each chunk's rows and day numbers in turn (about `chunk_rows` rows each)."""
    for first_user, end_user in plan.chunks(chunk_rows):
        yield make_chunk(plan, first_user, end_user)
