"""The neighbour blend computed in place for blocks of customers gives bit for bit the scores of the plain formula.

The customer lists score every customer through `blend_neighbours_into` (no sparse-times-sparse product, no
second dense matrix); the single-customer page and the tuner's measure use `blend_neighbours`. The lists
must rank exactly as those do, so the two are compared with `array_equal`, not a tolerance.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dagster_project.model_card import ModelParams
from dagster_project.scorers import blend_neighbours, blend_neighbours_into, item_neighbours, scaled_rows
from tests.workspace import train_on


def purchases(seed: int = 4) -> sp.csr_matrix:
    """300 customers x 400 products; some customers bought nothing, one bought everything of a few products."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((300, 400)) < rng.random((300, 1)) * 0.05) * rng.integers(1, 5, (300, 400))
    dense[:20] = 0  # customers without purchases
    dense[20, :5] = 3
    return sp.csr_matrix(dense.astype(np.float32))


def test_in_place_blend_is_the_formula_bit_for_bit() -> None:
    counts = purchases()
    neighbours = item_neighbours(counts)
    bought = counts > 0
    rng = np.random.default_rng(1)
    cf = (rng.standard_normal(counts.shape) * rng.random((counts.shape[0], 1))).astype(np.float32)
    cf[5] = 0.0  # a customer whose factor scores are all zero
    largest = np.abs(cf).max(axis=1)
    for weight in (0.3, 1.0, 0.0):
        expected = blend_neighbours(cf, (bought.astype(np.float32) @ neighbours).toarray(), weight)
        got = blend_neighbours_into(cf.copy(), largest, bought, neighbours, weight)
        assert got.dtype == np.float32 and np.array_equal(got, expected), weight
    assert not np.array_equal(blend_neighbours(cf, cf, 0.3), scaled_rows(cf))  # the blend does change scores


def test_excluded_items_stay_excluded() -> None:
    counts = purchases(seed=9)
    neighbours = item_neighbours(counts)
    cf = np.random.default_rng(2).standard_normal(counts.shape).astype(np.float32)
    largest = np.abs(cf).max(axis=1)
    owner = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    cf[owner, counts.indices] = -np.inf
    got = blend_neighbours_into(cf, largest, counts > 0, neighbours, 0.3)
    assert np.isneginf(got[owner, counts.indices]).all()
    assert np.isfinite(np.delete(got.ravel(), owner * counts.shape[1] + counts.indices)).all()


def test_served_block_scores_are_the_formula(sample_source) -> None:
    """`score_users` (what the lists start from) is the factor model blended with the neighbours, exactly."""
    model = train_on(sample_source, ModelParams(factors=16, shrinkage=1.0, weighting="log", neighbour_weight=0.3))
    rows = np.arange(model.n_users)
    factor = np.asarray(model.weighted[rows] @ model.item_factors) @ model.projection
    neighbour = ((model.counts[rows] > 0).astype(np.float32) @ model.neighbours).toarray()
    assert model.neighbours.nnz and np.array_equal(model.score_users(rows), blend_neighbours(factor, neighbour, 0.3))
    scores, largest = model.factor_scores(rows)
    assert np.array_equal(scores, factor) and np.array_equal(largest, np.abs(factor).max(axis=1))
