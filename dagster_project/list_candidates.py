"""Exact candidates for the customer lists: score what can still reach a customer's top n, not the catalogue.

A customer's factor score of item i is q . p_i (q: their weighted purchases times V; p_i: item i's column
of the model's projection), so |score| <= |q| |p_i| (Cauchy-Schwarz). Item norms are long-tailed (best-sellers
load on the leading factors), so the items are ranked by |p_i| once, and each block of customers is scored on
the first `HEAD` of them only (one small matrix product): every other item scores at most |q| |p_HEAD|.
The item-neighbour part of the blended score is sparse (only products bought together with the customer's
own have one), so an item outside the head reaches at most |q| |p_i| / L + w nb_i / N; the few that can
still beat the n-th best score found are scored exactly, one by one. The neighbour sums outside the head
are added up only for customers where they could matter: no such sum exceeds the sum of the bought items'
largest neighbour entries out there, which for most customers is below what would count.

A customer is settled when nothing left out can reach their n-th best new product or n-th best factor score
(the buy-again candidates) and their largest absolute score L is found; the lists are then the ones the dense
scores give. The rare customer who is not settled (2 in 10,000 on a sample of the generated 1M shop, none
of 51,200 at 10M) is scored densely by the caller, as before. Float32 rounding is covered by a margin on every bound.

Imports no Dagster; list_building uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from dagster_project.recommender import RecommenderModel

HEAD = 512  # items scored for every customer, the largest norms first (10M: 99 % of customers need < 400)
RELATIVE_MARGIN = 1e-4  # float32 scores of k terms err by far less than this share of |q| |p_i|
DENSE_NEAR = 1 << 24  # items x head neighbour entries kept dense up to this many (64 MB of float32)
ABSOLUTE_MARGIN = 1e-6  # and a blended score (at most 1 + w) by less than a few float32 steps


@dataclass(frozen=True)
class RankedItems:
    """The model's items ranked by the norm of their projection column, the head's columns kept contiguous."""

    order: np.ndarray  # item indices, largest norm first
    rank: np.ndarray  # rank[item]: its position in `order`
    norms: np.ndarray  # float64, item order (not ranked)
    head: np.ndarray  # k x HEAD projection columns of order[:HEAD]
    beyond: float  # the largest norm outside the head (-inf when the head is the whole catalogue)
    binary: sp.csr_matrix  # the purchases as 0/1 float32 (the neighbour sums add rows of the neighbour matrix)
    near: sp.csr_matrix | np.ndarray  # the model's item neighbours in the head's columns (items x head, rank order)
    far: sp.csr_matrix  # and in the other columns (items x the rest, rank order)
    far_max: np.ndarray  # each item's largest neighbour entry in those other columns (0 if none)

    @classmethod
    def of(cls, model: RecommenderModel, head: int = HEAD) -> RankedItems:
        projection = model.projection
        norms = np.sqrt(np.einsum("ki,ki->i", projection, projection, dtype=np.float64))
        order = np.argsort(-norms, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        size = min(head, order.size)
        beyond = float(norms[order[size]]) if size < order.size else -np.inf
        binary = model.counts.astype(bool).astype(np.float32)
        neighbours = model.neighbours.tocsc()  # split by column: the head's (columns in rank order) and the rest
        near = neighbours[:, order[:size]].tocsr()
        if near.shape[0] * near.shape[1] <= DENSE_NEAR:  # dense, the block's head sums are one sparse x dense product
            near = near.toarray()
        far = neighbours[:, order[size:]].tocsr()  # column c: the item of rank size + c
        head_columns = np.ascontiguousarray(projection[:, order[:size]])
        far_max = np.zeros(order.size, dtype=np.float32)
        filled = np.diff(far.indptr) > 0
        if filled.any():
            far_max[filled] = np.maximum.reduceat(far.data, far.indptr[:-1][filled])
        return cls(order, rank, norms, head_columns, beyond, binary, near, far, far_max)


@dataclass
class Candidates:
    """A block's lists from candidates: positions are customers of the block; `settled` says whose are exact."""

    new_items: np.ndarray  # customers x width item indices, -1 where shorter
    new_scores: np.ndarray  # float32 blended scores (raw factor scores when the model has no blend)
    again_items: np.ndarray  # the factor model's top items among those not bought
    again_scores: np.ndarray
    own_scores: np.ndarray  # the factor scores of the (customer, bought item) pairs, in CSR order
    largest: np.ndarray  # each customer's largest absolute factor score, float32
    settled: np.ndarray  # bool per customer


def best(
    values: np.ndarray, items: np.ndarray, width: int, floor: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `width` best values (-inf excluded), best first, equal values by lower item index (as
    ranking.top_k_wide ranks them): their items (-1 where fewer) and values (-inf there). `floor`, when known,
    is at most each row's width-th best value (it saves finding it)."""
    rows, columns = values.shape
    out_items = np.full((rows, width), -1, dtype=np.int64)
    out_values = np.full((rows, width), -np.inf, dtype=values.dtype)
    m = min(width, columns)
    if m <= 0 or rows == 0:
        return out_items, out_values
    if floor is None:
        floor = np.partition(values, columns - m, axis=1)[:, columns - m]  # each row's m-th best
    found = np.flatnonzero((values >= floor[:, None]) & ~np.isneginf(values))
    row, column = np.divmod(found, columns)
    value = values.reshape(-1)[found]
    item = items.reshape(-1)[found] if items.ndim == 2 else items[column]
    if found.size == rows * m and (np.bincount(row, minlength=rows) == m).all():  # no ties at the m-th: by row
        order = np.lexsort((item.reshape(rows, m), -value.reshape(rows, m)))
        out_items[:, :m] = np.take_along_axis(item.reshape(rows, m), order, axis=1)
        out_values[:, :m] = np.take_along_axis(value.reshape(rows, m), order, axis=1)
        return out_items, out_values
    order = np.lexsort((item, -value, row))
    row, item, value = row[order], item[order], value[order]
    place = np.arange(row.size) - np.searchsorted(row, row)
    keep = place < width
    out_items[row[keep], place[keep]] = item[keep]
    out_values[row[keep], place[keep]] = value[keep]
    return out_items, out_values


def _sums(bought: sp.csr_matrix, neighbours: sp.csr_matrix, some: np.ndarray) -> sp.csr_matrix:
    """The neighbour sums (bought @ neighbours) of some rows of `bought`, one row each."""
    return bought[some] @ neighbours


def _largest(sums: sp.csr_matrix, some: np.ndarray, count: int) -> np.ndarray:
    """Each of `count` rows' largest sum (rows `some` in `sums`; 0 for the others: sums are never negative)."""
    largest = np.zeros(count, dtype=np.float32)
    filled = np.diff(sums.indptr) > 0
    if filled.any():
        largest[some[filled]] = np.maximum.reduceat(sums.data, sums.indptr[:-1][filled])
    return largest


def _at_least(sums: sp.csr_matrix, some: np.ndarray, least: np.ndarray) -> tuple[np.ndarray, ...]:
    """(row, column, sum) of the entries of `sums` (rows `some`) at or above their row's `least`."""
    pick = np.flatnonzero(sums.data >= np.repeat(least[some], np.diff(sums.indptr)))
    return some[np.searchsorted(sums.indptr, pick, side="right") - 1], sums.indices[pick], sums.data[pick]


def _dot(q: np.ndarray, targets: np.ndarray, customer: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Factor scores of single (customer, item) pairs, float32."""
    return np.einsum("pk,pk->p", q[customer], targets[item])


def pays_off(model: RecommenderModel, ranked: RankedItems, rows: np.ndarray, n: int = 10, sample: int = 512) -> bool:
    """Whether the candidates settle at least half of an even sample of these customers. Popularity debiasing
    flattens the item norms, and then the bound settles few: their lists are better scored densely at once."""
    if not rows.size or not ranked.head.shape[1]:
        return False
    spread = rows[np.linspace(0, rows.size - 1, min(sample, rows.size)).astype(np.int64)]
    return bool(score(model, ranked, spread, n).settled.mean() >= 0.5)


def score(model: RecommenderModel, ranked: RankedItems, rows: np.ndarray, n: int) -> Candidates:
    """Both lists' candidates for some customers with purchases (`rows` of the purchase matrix), from the head
    and the neighbour sums; `settled` is False for the customers whose bounds do not prove the lists exact."""
    count, width = len(rows), min(n, model.n_items)
    targets = model.item_targets
    q = np.asarray(model.weighted[rows] @ model.item_factors)  # as factor_scores does, customers x k
    reach = np.sqrt(np.einsum("ck,ck->c", q, q, dtype=np.float64))  # |q|
    outside = np.full(count, -np.inf)  # a bound of every factor score outside the head (none if it is everything)
    if np.isfinite(ranked.beyond):
        outside = reach * ranked.beyond * (1 + RELATIVE_MARGIN)
    head = q @ ranked.head  # customers x head, the head's items in rank order
    head_items = ranked.order[: ranked.head.shape[1]]
    counts = model.counts[rows]
    owner = np.repeat(np.arange(count), np.diff(counts.indptr))
    bought = counts.indices
    own = _dot(q, targets, owner, bought) if bought.size else np.zeros(0, dtype=np.float32)
    largest = np.abs(head).max(axis=1) if head.shape[1] else np.zeros(count, dtype=np.float32)
    if own.size:
        np.maximum.at(largest, owner, np.abs(own))
    settled = outside <= largest  # nothing left out can be larger in absolute value: L is exact
    place = ranked.rank[bought]
    in_head = place < head.shape[1]
    head[owner[in_head], place[in_head]] = -np.inf
    again_items, again_scores = best(head, head_items, width)
    if width:  # nothing left out beats the n-th best factor score
        settled &= outside < again_scores[:, -1]
    weight = model.params.neighbour_weight
    if weight == 0 or not settled.any():  # (nobody settled: the caller scores them all densely)
        return Candidates(again_items, again_scores, again_items, again_scores, own, largest, settled)

    # the blend, in blend_neighbours_into's float32 steps: cf / L + (nb / N) * w
    scale = np.where(largest > 0, largest, np.float32(1.0))
    size = head.shape[1]
    bought_binary = ranked.binary[rows]
    near = bought_binary @ ranked.near  # the neighbour sums of the head's items, dense like the head
    near = near.toarray() if sp.issparse(near) else np.asarray(near)  # (the same float32 sums, in the same order)
    top = near.max(axis=1, initial=0)
    # no neighbour sum outside the head exceeds the sum of the largest entries of the bought items' rows there:
    # where that is below the head's largest sum, the head's is the largest (most customers), and the sums
    # outside the head are added up only for the others, and below for those they could still give a product
    history = np.diff(bought_binary.indptr)
    ceiling = np.bincount(
        np.repeat(np.arange(count), history), weights=ranked.far_max[bought_binary.indices], minlength=count
    ) * (1 + RELATIVE_MARGIN + 1e-7 * history)  # float32 sums of |history| terms err by less
    loud = np.flatnonzero(ceiling >= top)
    loud_sums = _sums(bought_binary, ranked.far, loud)
    top = np.maximum(top, _largest(loud_sums, loud, count))
    top = np.where(top > 0, top, np.float32(1.0))
    near /= top[:, None]
    near *= weight
    blended = head / scale[:, None]
    blended += near
    floor = np.full(count, np.inf if not width else -np.inf, dtype=np.float32)  # the n-th best found so far
    if 0 < width <= size:
        floor = np.partition(blended, size - width, axis=1)[:, size - width]
    # neighbours outside the head: scored exactly only when their bound reaches the n-th best found so far;
    # first a cheap cut on the raw sums (every norm out there is at most the head's last), then each its own
    least = (floor - outside / scale - ABSOLUTE_MARGIN) * top / weight * (1 - RELATIVE_MARGIN)
    quiet = np.ones(count, dtype=bool)
    quiet[loud] = False
    reaching = np.flatnonzero(quiet & (ceiling >= least))
    cut = least.astype(np.float32)
    found = [_at_least(loud_sums, loud, cut), _at_least(_sums(bought_binary, ranked.far, reaching), reaching, cut)]
    who, columns, data = (np.concatenate(part) for part in zip(*found))
    order = np.argsort(who, kind="stable")  # customer by customer
    who, item, data = who[order], ranked.order[columns[order] + size], data[order]
    nb = data / top[who]
    nb *= weight
    bound = reach[who] * ranked.norms[item] * (1 + RELATIVE_MARGIN) / scale[who] + nb + ABSOLUTE_MARGIN
    keep = bound >= floor[who]
    who, item, nb = who[keep], item[keep], nb[keep]
    if bought.size and who.size:
        keys = owner.astype(np.int64) * model.n_items + bought  # ascending: CSR rows, sorted indices
        asked = who.astype(np.int64) * model.n_items + item
        at = np.minimum(np.searchsorted(keys, asked), keys.size - 1)
        fresh = keys[at] != asked
        who, item, nb = who[fresh], item[fresh], nb[fresh]
    extra = _dot(q, targets, who, item) / scale[who] + nb
    slots = np.bincount(who, minlength=count)
    wide = int(slots.max()) if slots.size else 0
    pad_values = np.full((count, wide), -np.inf, dtype=np.float32)
    pad_items = np.full((count, wide), -1, dtype=np.int64)
    slot = np.arange(who.size) - np.searchsorted(who, who)  # `who` ascends: CSR order
    pad_values[who, slot], pad_items[who, slot] = extra, item
    values = np.concatenate([blended, pad_values], axis=1)
    items = np.concatenate([np.broadcast_to(head_items, blended.shape), pad_items], axis=1)
    new_items, new_scores = best(values, items, width, floor)  # the head's n-th best bounds the n-th best of all
    if width:  # no item outside the head and without neighbours reaches the n-th best
        settled &= outside / scale + ABSOLUTE_MARGIN < new_scores[:, -1]
    return Candidates(new_items, new_scores, again_items, again_scores, own, largest, settled)
