"""The wide top-k given a known lower bound of each row's k-th best score ranks exactly as without it.

The customer lists pass the least blended score of the buy-again candidates as that bound when they pick the
new-products list; a bound that is loose, exact, or -inf must all give `top_k`'s answer.
"""

from __future__ import annotations

import numpy as np

from dagster_project.ranking import top_k, top_k_wide


def test_a_known_floor_gives_the_same_ranking() -> None:
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((200, 3000)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.01] = -np.inf  # bought items are excluded
    scores[3, :2995] = -np.inf  # fewer than k left
    scores[4] = -np.inf  # nothing left
    scores[6, 100:140] = 9.0  # ties at the top and across the boundary: lower index first
    k = 10
    exact = np.sort(scores, axis=1)[:, -k]  # the k-th best itself
    distinct = rng.permuted(np.tile(np.arange(3000), (200, 1)), axis=1)[:, :k]  # any k distinct items per row
    known = np.take_along_axis(scores, distinct, axis=1).min(axis=1)
    plain = top_k_wide(scores, k)
    untied = np.arange(200) != 6
    np.testing.assert_array_equal(plain[untied], top_k(scores[untied], k))
    for floor in (exact, known, np.full(200, -np.inf)):
        np.testing.assert_array_equal(top_k_wide(scores, k, floor), plain)
    assert (top_k_wide(scores, k, known)[4] == -1).all()
    assert top_k_wide(scores, k, exact)[6].tolist() == list(range(100, 110))
