"""Why a product is recommended: the customer's own purchases that pull it up most, in plain words.

With shrunk PureSVD a customer with weighted purchase row w scores candidate i as
sum_j w_j (V D V^T)_{j,i} over the items j they bought: each bought item's share of the score is its
term of that sum. The few items with the largest positive terms are the "because". Only the chosen
top-n are explained, so the work is |history| x n per customer, never |history| x catalogue.

Imports no Dagster: the recommender and the customer lists both use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_BECAUSE = 3
# A contribution below this share of the customer's largest score is rounding noise, not a reason.
NOISE = 1e-5
POPULAR_TEXT = "a best-seller"
FALLBACK_TEXT = "popular with customers who buy what you buy"


def contributions(
    weights: np.ndarray, bought_factors: np.ndarray, projection: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """|history| x len(candidates): w_j (V D V^T)_{j,i} for bought item j and candidate i."""
    return weights[:, None] * (bought_factors @ projection[:, candidates])


def top_contributors(contrib: np.ndarray, bought: np.ndarray, scale: float, k: int = MAX_BECAUSE) -> list[np.ndarray]:
    """Per candidate (column), the bought items with the k largest contributions above noise, largest first.

    `scale` is the customer's largest absolute score: contributions up to NOISE x scale are ignored.
    """
    if contrib.size == 0:
        return [np.empty(0, dtype=bought.dtype) for _ in range(contrib.shape[1])]
    k = min(k, contrib.shape[0])
    order = np.argsort(-contrib, axis=0, kind="stable")[:k]
    chosen = np.take_along_axis(contrib, order, axis=0)
    floor = NOISE * scale
    return [bought[order[:, c][chosen[:, c] > floor]] for c in range(contrib.shape[1])]


def join_names(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def because_text(names: Sequence[str]) -> str:
    return f"because you bought {join_names(names)}" if len(names) else FALLBACK_TEXT


def rebuy_text(times: float) -> str:
    count = int(round(float(times)))
    return "you bought it once" if count == 1 else f"you bought it {count} times"
