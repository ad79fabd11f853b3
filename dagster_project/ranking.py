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
