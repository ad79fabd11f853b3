"""Top-k selection: the one place that turns scores into a ranked list, for serving and for evaluation."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores along the last axis (a row, or each row of a matrix), best first.

    Items scored -inf (excluded) or NaN are never returned: where fewer than k remain, the tail is -1.
    A partial partition then a sort of the k found: O(items + k log k) per row, not a full sort.
    """
    k = min(k, scores.shape[-1])
    if k <= 0:
        return np.empty((*scores.shape[:-1], 0), dtype=np.intp)
    part = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=-1), axis=-1, kind="stable")
    best = np.take_along_axis(part, order, axis=-1)
    chosen = np.take_along_axis(scores, best, axis=-1)
    return np.where(np.isneginf(chosen) | np.isnan(chosen), -1, best)


def top_k_wide(scores: np.ndarray, k: int, floor: np.ndarray | None = None) -> np.ndarray:
    """`top_k` for a matrix of wide rows (many users x a large catalogue), several times faster.

    The k-th largest of the row's block maxima is a lower bound of its k-th largest score, so only
    the few scores at or above it are sorted, instead of partitioning every row. Equal scores are
    ranked by lower index. Scores must not be NaN; -inf means excluded, as in `top_k`.
    `floor`, when the caller knows one, is such a lower bound per row (say the least of the scores of k
    distinct items) and saves the pass over the block maxima.
    """
    rows, items = scores.shape
    k = min(k, items)
    blocks = min(items, 16 * k)
    if k <= 0 or (floor is None and blocks < 2 * k):
        return top_k(scores, k)
    if floor is None:
        width = items // blocks
        # block b holds items b, b + blocks, b + 2 * blocks, ...: the maximum runs along contiguous memory
        maxima = np.maximum.reduce(scores[:, : blocks * width].reshape(rows, width, blocks), axis=1)
        floor = np.partition(maxima, blocks - k, axis=1)[:, blocks - k]
    found = np.flatnonzero(scores >= floor[:, None])
    row, col = np.divmod(found, items)
    value = scores[row, col]
    order = np.lexsort((col, -value, row))
    row, col, value = row[order], col[order], value[order]
    rank = np.arange(row.size) - np.searchsorted(row, row)
    keep = (rank < k) & ~np.isneginf(value)
    best = np.full((rows, k), -1, dtype=np.intp)
    best[row[keep], rank[keep]] = col[keep]
    return best
