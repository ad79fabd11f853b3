"""Building every customer's lists in batches: scoring, choosing, explaining, and writing row groups.

Customers are scored in blocks (never one `recommend()` call per customer) on their candidates only
(list_candidates: the products that can still reach their top n, with a bound that proves it; the rare
customer it does not settle is scored densely with matrix products), and
the buy-again list reuses the new list's candidates: a blended score only adds the customer's own
counts to items they bought, so its top-N lies within the new list's top-N plus their purchases. The
rows come out exactly as `RecommenderModel.recommend` gives them (tests/test_customer_lists.py).
Each block becomes one Parquet row group of a file that replaces the previous one only when complete.

Imports no Dagster; `customer_lists` is the data product's interface.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from dagster_project import explanations, list_candidates
from dagster_project.customer_directory import customer_columns
from dagster_project.fileio import atomic_path
from dagster_project.ranking import top_k, top_k_wide
from dagster_project.recommender import RecommenderModel

LIST_LENGTH = 10
BLOCK_USERS = 512  # customers per Parquet row group
COLD_BLOCKS = 4  # customers without purchases (the best-sellers alike) go COLD_BLOCKS x BLOCK_USERS per row group
SCORING_WORKERS = 2  # threads scoring blocks side by side (the machine's cores; Parquet is encoded on another)
BECAUSE_PAIRS = 1 << 14  # padded (customer, bought item) rows explained at once (x n x k floats)
SCORE_ROWS = 256  # customers scored at once: their dense float32 scores (256 x items) stay in the CPU cache
LISTS = ("new", "buy_again")
CATALOGUE_KEY = b"recomart.catalogue"  # Parquet key-value metadata: the catalogue the lists came from
LINEAGE_KEY = b"recomart.lineage"  # and the model they came from (list_update: what an update may build on)
SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("customer_name", pa.string()),
        ("email", pa.string()),
        ("list", pa.string()),
        ("rank", pa.int32()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("score", pa.float64()),
        ("reason", pa.string()),
        ("because", pa.list_(pa.string())),
        ("explanation", pa.string()),
    ]
)
COLUMNS = SCHEMA.names


def _strings(values: object) -> pa.Array:
    return pa.array(pd.Series(values, dtype="string"), type=pa.string(), from_pandas=True)


class _Catalogue:
    """The model's products and customers as Arrow arrays, taken by index when rows are built."""

    def __init__(self, model: RecommenderModel, customers: pd.DataFrame) -> None:
        items = model.items
        self.product_id = _strings(items["product_id"])
        self.name = _strings(items["name"])
        self.category = _strings(items["category"])
        self.user_id = _strings(customers["user_id"])
        self.customer_name = (
            _strings(customers["name"]) if "name" in customers else pa.nulls(len(customers), pa.string())
        )
        self.email = _strings(customers["email"]) if "email" in customers else pa.nulls(len(customers), pa.string())


def _repeat(text: str, count: int) -> pa.Array:
    """`count` times the same text, made by Arrow (no array of Python strings)."""
    return pa.repeat(pa.scalar(text, pa.string()), count)


def _take(values: pa.Array, index: np.ndarray) -> pa.Array:
    """values[index], null where index < 0."""
    return values.take(pa.array(np.where(index < 0, 0, index), mask=index < 0))


def _explain_text(names: list[pa.Array]) -> pa.Array:
    """'because you bought A, B and C' from up to three name columns (null where fewer products)."""
    prefix = "because you bought "
    three = pc.binary_join_element_wise(prefix, names[0], ", ", names[1], " and ", names[2], "")
    fewer = three.is_null()  # most rows name three products: the shorter texts are made for the others only
    if not pc.any(fewer).as_py():
        return three
    names = [name.filter(fewer) for name in names]
    two = pc.binary_join_element_wise(prefix, names[0], " and ", names[1], "")
    one = pc.binary_join_element_wise(prefix, names[0], "")
    shorter = pc.coalesce(two, one, pa.scalar(explanations.FALLBACK_TEXT))
    return pc.replace_with_mask(three, fewer, shorter)


def _rebuy_text(counts: np.ndarray) -> pa.Array:
    times = pc.binary_join_element_wise(
        "you bought it ", pa.array(counts.astype(np.int64)).cast(pa.string()), " times", ""
    )
    return pc.if_else(pa.array(counts == 1), pa.scalar("you bought it once"), times)


def _table(
    cat: _Catalogue,
    customer: np.ndarray,  # per output row: position in the customer list
    list_name: str,
    items: np.ndarray,  # per row: item index
    rank: np.ndarray,
    scores: np.ndarray,
    reason: pa.Array,
    because: np.ndarray,  # rows x 3 item indices, -1 padded (a prefix is filled)
    explanation: pa.Array,
) -> pa.Table:
    lengths = (because >= 0).sum(axis=1)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    because_ids = pa.ListArray.from_arrays(pa.array(offsets), cat.product_id.take(pa.array(because[because >= 0])))
    columns = [
        _take(cat.user_id, customer),
        _take(cat.customer_name, customer),
        _take(cat.email, customer),
        _repeat(list_name, len(items)),
        pa.array(rank.astype(np.int32)),
        cat.product_id.take(pa.array(items)),
        cat.name.take(pa.array(items)),
        cat.category.take(pa.array(items)),
        pa.array(np.round(scores.astype(np.float64), 6) + 0.0),
        reason,
        because_ids,
        explanation,
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _because(model: RecommenderModel, weighted: sp.csr_matrix, candidates: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """For each (customer, candidate): the up-to-3 bought items contributing most, len(rows) x n x 3, -1 padded.

    `weighted` holds the block's weighted purchase rows. Contribution of bought item j to candidate i is
    w_j (V D V^T)_{j,i} (see explanations): for each customer, their bought items' factors times their
    candidates' targets, one small matrix product each (their histories padded to the longest of a few
    customers at a time), then a stable sort per candidate: largest first, equal ones in purchase-row order.
    """
    rows, n = candidates.shape
    out = np.full((rows, n, explanations.MAX_BECAUSE), -1, dtype=np.int64)
    lengths = np.diff(weighted.indptr)
    longest = int(lengths.max()) if rows else 0
    if not longest:
        return out
    step = max(1, BECAUSE_PAIRS // longest)  # customers at once: their padded histories stay small
    for start in range(0, rows, step):
        part = weighted[start : start + step]
        size, width = part.shape[0], int(lengths[start : start + step].max())
        owner = np.repeat(np.arange(size), np.diff(part.indptr))
        slot = np.arange(owner.size) - part.indptr[:-1][owner]
        factors = np.zeros((size, width, model.item_factors.shape[1]), dtype=model.item_factors.dtype)
        factors[owner, slot] = model.item_factors[part.indices]
        weights = np.zeros((size, width), dtype=np.float32)
        weights[owner, slot] = part.data
        items = np.full((size, width), -1, dtype=np.int64)
        items[owner, slot] = part.indices
        targets = model.item_targets[np.maximum(candidates[start : start + step], 0)]  # size x n x k
        pair = np.matmul(factors, targets.transpose(0, 2, 1))  # size x width x n
        pair *= weights[:, :, None]
        pair[items < 0] = -np.inf
        top = min(explanations.MAX_BECAUSE, width)
        order = np.argsort(-pair, axis=1, kind="stable")[:, :top]  # size x top x n
        chosen = np.take_along_axis(pair, order, axis=1)
        picked = items[np.arange(size)[:, None, None], order]
        picked[~(chosen > (explanations.NOISE * scale[start : start + step])[:, None, None])] = -1
        out[start : start + size, :, :top] = picked.transpose(0, 2, 1)
    return out


@dataclass
class _Picks:
    """A block's top-n of one score matrix: item indices (-1 where the list is shorter) and their scores."""

    items: np.ndarray  # customers x n
    scores: np.ndarray  # customers x n, float64
    valid: np.ndarray  # items >= 0
    because: np.ndarray | None = None  # customers x n x MAX_BECAUSE item indices, -1 padded (set by _explain)


def _pick(scores: np.ndarray, n: int, floor: np.ndarray | None = None) -> _Picks:
    """Each customer's top-n of a block of scores (bought items already set to -inf); `floor` as in top_k_wide."""
    items = top_k_wide(scores, n, floor)
    values = np.take_along_axis(scores, np.maximum(items, 0), axis=1).astype(np.float64)
    return _Picks(items, values, items >= 0)


def _score(
    model: RecommenderModel, rows: np.ndarray, n: int, likely: np.ndarray | None = None
) -> tuple[_Picks, _Picks, np.ndarray, np.ndarray]:
    """Some customers' new-products and buy-again candidates from one dense block of scores; with the factor
    model's scores of the items they bought and each customer's largest absolute factor-model score.

    The factor model's scores, bought items set to -inf, give the buy-again candidates (re-buys rank on the
    factor model); then, when the model blends in item neighbours, the same block is blended in place and
    gives the new-products list (the blend is for variety among new products). `likely` (see _likely_items)
    only makes the picking cheaper: the n-th best score among those items bounds each row's n-th best.
    """
    bought = model.counts[rows]
    owner = np.repeat(np.arange(len(rows)), np.diff(bought.indptr))
    scores, top = model.factor_scores(rows)
    own_scores = scores[owner, bought.indices].astype(np.float64)
    scores[owner, bought.indices] = -np.inf
    floor = None
    if likely is not None and likely.size >= n > 0:
        floor = np.partition(scores[:, likely], likely.size - n, axis=1)[:, likely.size - n]
    again = new = _pick(scores, n, floor)
    if model.params.neighbour_weight > 0:
        blended = model.blend_neighbours_into(scores, top, rows)
        # the buy-again candidates are n distinct items: the least of their blended scores is a lower bound of
        # each row's n-th best blended score (-inf where a row has fewer candidates)
        known = np.take_along_axis(blended, np.maximum(again.items, 0), axis=1).min(axis=1, initial=np.inf)
        new = _pick(blended, n, np.where(again.valid.all(axis=1), known, -np.inf))
    return new, again, own_scores, top


def _candidates(
    model: RecommenderModel, ranked: list_candidates.RankedItems, rows: np.ndarray, n: int, likely: _Likely | None
) -> tuple[_Picks, _Picks, np.ndarray, np.ndarray]:
    """`_score`'s answer for a block of customers, from list_candidates' exact candidates; the few customers
    whose bounds do not settle their lists are scored densely, SCORE_ROWS at a time (never more than one such
    dense block of users x items at once)."""
    found = list_candidates.score(model, ranked, rows, n)
    new = _Picks(found.new_items, found.new_scores.astype(np.float64), found.new_items >= 0)
    again = new
    if model.params.neighbour_weight > 0:
        # a copy: the candidates may hand over one array for both lists, and the dense rows below differ
        again = _Picks(found.again_items.copy(), found.again_scores.astype(np.float64), found.again_items >= 0)
    own_scores, largest = found.own_scores.astype(np.float64), found.largest
    unsettled = np.flatnonzero(~found.settled)
    if unsettled.size:
        owner = np.repeat(np.arange(len(rows)), np.diff(model.counts[rows].indptr))
        items = likely() if likely is not None else None
        for start in range(0, unsettled.size, SCORE_ROWS):
            some = unsettled[start : start + SCORE_ROWS]
            dense_new, dense_again, dense_own, dense_largest = _score(model, rows[some], n, items)
            for picks, dense in ((new, dense_new), (again, dense_again)) if again is not new else ((new, dense_new),):
                picks.items[some], picks.scores[some], picks.valid[some] = dense.items, dense.scores, dense.valid
            own_scores[np.isin(owner, some)] = dense_own
            largest[some] = dense_largest
    return new, again, own_scores, largest


def _likely_items(model: RecommenderModel, rows: np.ndarray, n: int) -> np.ndarray:
    """The 4n products most often among the factor model's top n for some customers: for the others too, the
    n-th best score among them is close below their n-th best, so picking their top n looks at few scores."""
    picked = _score(model, rows, n)[1].items
    picked = picked[picked >= 0]
    return np.argsort(-np.bincount(picked, minlength=model.n_items), kind="stable")[: 4 * n]


class _Likely:
    """`_likely_items` of the first customers, made when a customer needs dense scoring (most builds have none:
    scoring those customers densely costs half a second at 20,000 products), once, whichever thread asks first."""

    def __init__(self, model: RecommenderModel, rows: np.ndarray, n: int) -> None:
        self._made: np.ndarray | None = None
        self._make = lambda: _likely_items(model, rows, n)
        self._lock = threading.Lock()

    def __call__(self) -> np.ndarray:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


def _explain(model: RecommenderModel, weighted: sp.csr_matrix, largest: np.ndarray, *picks: _Picks) -> None:
    """Set each pick's `because`, for all of them in one pass over the block's purchases."""
    if len(picks) == 2 and picks[0] is picks[1]:
        picks = picks[:1]
    because = _because(model, weighted, np.concatenate([p.items for p in picks], axis=1), largest)
    for i, p in enumerate(picks):
        p.because = because[:, i * p.items.shape[1] : (i + 1) * p.items.shape[1]]


def _buyer_tables(
    model: RecommenderModel,
    cat: _Catalogue,
    positions: np.ndarray,
    rows: np.ndarray,
    n: int,
    ranked: list_candidates.RankedItems,
    likely: _Likely | None = None,
) -> Iterator[pa.Table]:
    """Both lists for a block of customers with purchases (`rows` in the purchase matrix), from their candidates
    (see `_candidates`)."""
    weighted, counts = model.weighted[rows], model.counts[rows]
    owner = np.repeat(np.arange(len(rows)), np.diff(weighted.indptr))
    bought = weighted.indices
    new, again, own_scores, largest = _candidates(model, ranked, rows, n, likely)
    largest = largest.astype(np.float64)  # explanations and re-buys use it
    _explain(model, weighted, largest, new, again)
    block_rows = np.repeat(np.arange(len(rows)), new.valid.sum(axis=1))
    names = [_take(cat.name, new.because[..., r][new.valid]) for r in range(explanations.MAX_BECAUSE)]
    new_reason = _repeat("similar customers", int(new.valid.sum()))
    yield _table(
        cat,
        positions[block_rows],
        "new",
        new.items[new.valid],
        np.nonzero(new.valid)[1] + 1,
        new.scores[new.valid],
        new_reason,
        new.because[new.valid],
        _explain_text(names),
    )

    # buy again: the factor model's candidates (scaled) and the customer's own items (scaled, plus their counts)
    scale = np.where(largest > 0, largest, 1.0)
    log_counts = np.log1p(counts.data.astype(np.float64))
    top_log = np.zeros(len(rows))
    np.maximum.at(top_log, owner, log_counts)  # each customer's largest log count
    top_log = np.where(top_log > 0, top_log, 1.0)
    own_blend = own_scores / scale[owner] + model.params.rebuy_weight * log_counts / top_log[owner]
    history = np.diff(counts.indptr)
    width = int(history.max()) if history.size else 0
    slot = np.arange(owner.size) - counts.indptr[:-1][owner]
    own_items = np.full((len(rows), width), -1, dtype=np.int64)
    own_values = np.full((len(rows), width), -np.inf)
    own_times = np.zeros((len(rows), width))
    own_items[owner, slot], own_values[owner, slot], own_times[owner, slot] = bought, own_blend, counts.data
    pool_items = np.concatenate([again.items, own_items], axis=1)
    pool_values = np.concatenate([np.where(again.valid, again.scores / scale[:, None], -np.inf), own_values], axis=1)
    pick = top_k(pool_values, n)
    chosen = pick >= 0
    pick = np.maximum(pick, 0)
    items = np.take_along_axis(pool_items, pick, axis=1)[chosen]
    values = np.take_along_axis(pool_values, pick, axis=1)[chosen]
    candidates = again.items.shape[1]  # n, or fewer when the catalogue is smaller than a list
    is_own = (pick >= candidates)[chosen]
    from_new = np.minimum(pick, max(candidates - 1, 0))
    block_rows = np.repeat(np.arange(len(rows)), chosen.sum(axis=1))
    because_again = np.take_along_axis(again.because, from_new[..., None], axis=1)[chosen]
    because_again[is_own] = -1
    times = np.take_along_axis(own_times, np.maximum(pick - candidates, 0), axis=1)[chosen]
    names = [_take(cat.name, because_again[:, r]) for r in range(explanations.MAX_BECAUSE)]
    text = pc.if_else(pa.array(is_own), _rebuy_text(times), _explain_text(names))
    reason = pc.if_else(pa.array(is_own), pa.scalar("buy again"), pa.scalar("similar customers"))
    yield _table(
        cat,
        positions[block_rows],
        "buy_again",
        items,
        np.nonzero(chosen)[1] + 1,
        values,
        reason,
        because_again,
        text,
    )


def _popular_tables(model: RecommenderModel, cat: _Catalogue, positions: np.ndarray, n: int) -> Iterator[pa.Table]:
    """Best-sellers on both lists for customers without purchases."""
    best = model.popular(n)
    items = pd.Index(model.items["product_id"]).get_indexer(best["product_id"])
    count = len(positions) * len(items)
    customer = np.repeat(positions, len(items))
    tiled = np.tile(items, len(positions))
    for list_name in LISTS:
        yield _table(
            cat,
            customer,
            list_name,
            tiled,
            np.tile(np.arange(1, len(items) + 1), len(positions)),
            np.tile(best["score"].to_numpy(dtype=np.float64), len(positions)),
            _repeat("popular", count),
            np.full((count, explanations.MAX_BECAUSE), -1, dtype=np.int64),
            _repeat(explanations.POPULAR_TEXT, count),
        )


def purchase_rows(model: RecommenderModel, customers: pd.DataFrame) -> np.ndarray:
    """Each customer's row in the purchase matrix, -1 for those without purchases (Arrow's hash look-up: a quarter
    of pandas' time on a million ids)."""
    return purchase_rows_of(model, _strings(customers["user_id"]))


def purchase_rows_of(model: RecommenderModel, ids: pa.Array) -> np.ndarray:
    """`purchase_rows` of the customers with these ids."""
    found = pc.index_in(ids, value_set=_strings(model.user_ids))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def profile_ids(model: RecommenderModel) -> pa.Array:
    """The ids of the model's customers in Arrow, in the order of its profiles (`model.customer_order()` gives the
    order of `model.customers()` in it: no frame of every customer is made)."""
    ids = _strings(pd.array(model.user_profiles.index, dtype="string"))
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def customer_frame(model: RecommenderModel, places: np.ndarray) -> pd.DataFrame:
    """The rows of `model.customers()` of the customers at these positions of its profiles."""
    return customer_columns(model.user_profiles, places)


def layout(rows: np.ndarray, block: int = BLOCK_USERS) -> list[np.ndarray]:
    """The customers of each row group pair `build` writes, in order (positions in `rows`, the customers' rows in
    the purchase matrix): those with purchases `block` at a time, then the others `COLD_BLOCKS` x `block` at a time."""
    buyers, cold = np.flatnonzero(rows >= 0), np.flatnonzero(rows < 0)
    cold_block = block * COLD_BLOCKS
    return [buyers[s : s + block] for s in range(0, buyers.size, block)] + [
        cold[s : s + cold_block] for s in range(0, cold.size, cold_block)
    ]


def build(
    model: RecommenderModel,
    n: int = LIST_LENGTH,
    block: int = BLOCK_USERS,
    workers: int = SCORING_WORKERS,
    head: int = list_candidates.HEAD,
    only: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    customers: pd.DataFrame | None = None,
) -> Iterator[pa.Table]:
    """Both lists for every known customer, as Arrow tables of at most `block` customers each, in order.

    `head`: the items every customer is scored on (list_candidates); 0 scores every customer densely, the
    reference the candidates are tested against. `only`: some customers alone (positions in `model.customers()`,
    in `layout` order), given exactly the rows a build of everyone gives them (list_update rebuilds those).
    `rows`: `purchase_rows(model, model.customers())` when the caller has it already; `customers`: with `only`
    and `rows`, the rows of `model.customers()` at `only` (`customer_frame`), so every customer's is not made.
    """
    if rows is None or only is None or customers is None:
        everyone = model.customers()
        rows = purchase_rows(model, everyone) if rows is None else rows
        customers = everyone.iloc[np.asarray(only, dtype=np.int64)] if only is not None else everyone
    buyers = np.flatnonzero(rows >= 0)
    likely = _Likely(model, rows[buyers[:SCORE_ROWS]], n) if buyers.size else None
    ranked = list_candidates.RankedItems.of(model, head)
    if head and not list_candidates.pays_off(model, ranked, rows[buyers], n):
        ranked = list_candidates.RankedItems.of(model, 0)  # every customer scored densely, without the attempt
    if only is not None:  # chosen as for everyone above (the same path, the same rows), then narrowed
        rows = rows[np.asarray(only, dtype=np.int64)]
        buyers = np.flatnonzero(rows >= 0)
    cat = _Catalogue(model, customers)

    def tables(start: int) -> list[pa.Table]:
        positions = buyers[start : start + block]
        return list(_buyer_tables(model, cat, positions, rows[positions], n, ranked, likely))

    _ = model.item_targets  # made once here, not raced for by the scoring threads
    starts = range(0, buyers.size, block)
    if len(starts) <= 1 or workers <= 1:
        for start in starts:
            yield from tables(start)
    else:
        # blocks are independent (the model is only read): scored on `workers` threads, which numpy and
        # BLAS let run side by side, and yielded in order; a few blocks ahead at most, so memory stays flat
        with ThreadPoolExecutor(workers, thread_name_prefix="customer-lists-score") as pool:
            ahead: deque[Future] = deque()
            for start in starts:
                ahead.append(pool.submit(tables, start))
                if len(ahead) > 2 * workers:
                    yield from ahead.popleft().result()
            while ahead:
                yield from ahead.popleft().result()
    cold = np.flatnonzero(rows < 0)
    for start in range(0, cold.size, block * COLD_BLOCKS):
        yield from _popular_tables(model, cat, cold[start : start + block * COLD_BLOCKS], n)


def catalogue_counts(model: RecommenderModel) -> dict:
    """Products in the catalogue, in all and per category (what coverage is measured against)."""
    by_category = model.items["category"].astype("string").fillna("Uncategorized").value_counts()
    return {"products": int(model.n_items), "by_category": {str(k): int(v) for k, v in by_category.items()}}


def write(
    tables: Iterable[pa.Table],
    path: Path,
    catalogue: dict | None = None,
    lineage: dict | None = None,
    extra: dict[bytes, bytes] | None = None,
) -> Path:
    """Write the tables as row groups of one Parquet file, atomically: the whole new file or the old one.

    Anything raised while the tables are made or written leaves the previous file untouched. `extra`: more
    Parquet key-value metadata (list_layers: the base's id, a layer's summary).
    """
    metadata = {CATALOGUE_KEY: json.dumps(catalogue or {}).encode()}
    if lineage is not None:
        metadata[LINEAGE_KEY] = json.dumps(lineage, sort_keys=True).encode()
    metadata.update(extra or {})
    schema = SCHEMA.with_metadata(metadata)
    with (
        atomic_path(Path(path)) as tmp,
        pq.ParquetWriter(tmp, schema) as writer,
        ThreadPoolExecutor(1, thread_name_prefix="customer-lists") as background,
    ):
        pending: Future | None = None
        for table in tables:  # encoding one block (Arrow releases the GIL) overlaps scoring the next
            if pending is not None:
                pending.result()
            pending = background.submit(writer.write_table, table.replace_schema_metadata(schema.metadata))
        if pending is not None:
            pending.result()
    return Path(path)
