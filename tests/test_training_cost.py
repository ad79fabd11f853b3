"""Training's shortcuts give what the plain computation gives, and training never holds customers x products.

The tuner measures dozens of settings with `trial_lists.TrialLists` instead of `ShrunkSvd.score`; the
SVD is our own item-side randomized SVD; best-seller lists are ranked once for everyone. Each is
checked against the straightforward computation on a generated shop. The memory test trains on a shop
whose customers x products matrix would take gigabytes as floats and bounds what Python allocates.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dagster_project import evaluation as ev
from dagster_project import scorers
from dagster_project.model_card import ModelParams
from dagster_project.sample_data import generate
from dagster_project.scorers import Popularity, ShrunkSvd, SvdBasis, fit_factors, item_neighbours, weigh
from dagster_project.training import TrainingSettings, count_matrix, train_model
from dagster_project.trial_lists import TrialLists
from tests.workspace import prepared_tables


def _prepared(out, **sizes) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    generate(out, seed=11, **sizes)
    return prepared_tables(out)


@pytest.fixture(scope="module")
def holdout(tmp_path_factory) -> ev.Holdout:
    transactions, products, _ = _prepared(tmp_path_factory.mktemp("cost"), users=2500, products=600, transactions=25000)
    users, items = pd.Index(transactions["user_id"].unique()), pd.Index(products["product_id"])
    before, after, _ = ev.time_split(transactions)
    return ev.make_holdout(count_matrix(before, users, items), count_matrix(after, users, items))


def _same_lists(scores: np.ndarray, got: np.ndarray, want: np.ndarray) -> None:
    """The same list, or one that differs only where scores are equal (ties are listed in either order)."""
    assert got.shape == want.shape
    assert ((got >= 0) == (want >= 0)).all()
    rows = np.arange(len(scores))[:, None]
    np.testing.assert_allclose(scores[rows, np.maximum(got, 0)], scores[rows, np.maximum(want, 0)], rtol=1e-5)
    assert (got == want).mean() > 0.98


@pytest.mark.parametrize(
    "params",
    [
        ModelParams(16, 3.0, "binary", neighbour_weight=0.3),
        ModelParams(8, 0.0, "binary", rebuy_weight=2.0),
        ModelParams(16, 10.0, "binary", popularity_exponent=0.5, neighbour_weight=1.0, rebuy_weight=0.5),
    ],
)
def test_the_tuner_lists_are_the_lists_of_the_model_it_measures(holdout, params) -> None:
    basis = SvdBasis.fit(holdout.train, params.weighting, 32, neighbours=item_neighbours(holdout.train))
    for kind in ("new", "rebuy"):
        users = ev.sample_users(holdout.users(kind), 700, 0)
        model = ShrunkSvd(params, rebuy=kind == "rebuy").fit_basis(basis)
        scores = model.score(users)
        if kind == "new":
            scores[holdout.train[users].nonzero()] = -np.inf  # bought items are never listed
        want = ev.top_lists(scores, 10)
        for cache in (True, False):
            trial = TrialLists(basis, holdout, kind, 10, users, cache=cache).lists(params)
            _same_lists(scores, trial(users), want)
        measured = ev.measure_lists(TrialLists(basis, holdout, kind, 10, users).lists(params), holdout, kind, 10, users)
        expected = ev.evaluate_lists(model, holdout, kind, 10, users)
        assert measured[0].ndcg == pytest.approx(expected[0].ndcg, abs=2e-3)
        assert measured[0].coverage == pytest.approx(expected[0].coverage, abs=2e-3)
    with pytest.raises(ValueError, match="log model"):
        TrialLists(basis, holdout, "new", 10, users).lists(replace(params, weighting="log"))
    others = np.setdiff1d(np.arange(holdout.train.shape[0]), users)[:5]
    with pytest.raises(ValueError, match="other customers"):
        TrialLists(basis, holdout, "rebuy", 10, users).lists(params)(others)


def test_the_svd_finds_the_leading_factors_of_an_exact_svd(holdout, monkeypatch) -> None:
    weighted = weigh(holdout.train, "log")
    v, s = fit_factors(weighted, 20)
    dense = weighted.toarray().astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(dense.T @ dense)  # exact: X^T X = V diag(s^2) V^T
    exact_s, exact_v = np.sqrt(np.maximum(eigenvalues[::-1], 0.0)), eigenvectors[:, ::-1]
    np.testing.assert_allclose(s[:10], exact_s[:10], rtol=1e-3)
    assert (np.diff(s) <= 0).all()
    agreement = np.linalg.svd(exact_v[:, :10].T @ v[:, :10], compute_uv=False)  # cosines of the angles between
    assert agreement.min() > 0.99
    np.testing.assert_allclose(v.T @ v, np.eye(20), atol=1e-4)
    monkeypatch.setattr(scorers, "PRODUCT_BLOCK_ROWS", 300)  # customers in blocks of 300: the same factors
    blocked_v, blocked_s = fit_factors(weighted, 20)
    # the same up to float32 rounding of X^T X: the leading (converged) factors agree
    np.testing.assert_allclose(blocked_s[:10], s[:10], rtol=1e-4)
    np.testing.assert_allclose(np.abs(blocked_v[:, :10].T @ v[:, :10]).max(axis=0), 1.0, atol=1e-3)
    tiny = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))  # rank 1 of 3
    v, s = fit_factors(tiny, 2)
    np.testing.assert_allclose(s, [np.sqrt(2), 0.0], atol=1e-5)
    np.testing.assert_allclose(np.abs(v[:, 0]), [1, 0, 0], atol=1e-5)


def test_best_seller_lists_are_ranked_once_and_skip_each_customers_purchases(holdout) -> None:
    popularity = Popularity().fit(holdout.train)
    users = holdout.users("new")[:300]
    scores = popularity.score(users)
    bought = holdout.train[users]
    got = ev.top_lists(scores, 10, bought)
    order = np.argsort(-scores[0], kind="stable")
    for row, listed in zip(users, got):
        not_bought = order[~np.isin(order, holdout.train[row].indices)][:10]
        assert listed.tolist() == not_bought.tolist()
    everyone = ev.top_lists(scores, 10)
    assert (everyone == np.argsort(-scores[0], kind="stable")[:10]).all()
    narrow = ev.top_lists(np.broadcast_to(np.array([3.0, -np.inf, 1.0]), (4, 3)), 5, sp.csr_matrix((4, 3)))
    assert narrow.tolist() == [[0, 2, -1]] * 4  # the catalogue is shorter than k: as `top_k`, -1 pads


def trained_with_peak(*tables, settings) -> tuple:
    """The trained model and the peak of Python's allocations while training (numpy arrays included)."""
    tracemalloc.start()
    try:
        model = train_model(*tables, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return model, peak


def test_training_never_holds_a_dense_customers_by_products_matrix(tmp_path) -> None:
    transactions, products, users = _prepared(tmp_path, users=150_000, products=8_000, transactions=200_000)
    dense_bytes = transactions["user_id"].nunique() * len(products) * 4
    assert dense_bytes > 2e9  # customers x products as float32
    settings = TrainingSettings(
        factor_grid=(8, 16),
        shrinkage_grid=(1.0, 10.0),
        weightings=("log",),
        rebuy_grid=(1.0,),
        neighbour_grid=(0.0, 0.5),
        max_eval_users=500,
        max_test_users=2000,
    )
    model, peak = trained_with_peak(transactions, products, users, settings=settings)
    assert model.card.metrics["new"]["svd"].users == 2000
    # Customers are scored in blocks (two at a time, a few copies each): a tenth of a gigabyte here. Any
    # dense customers x products array, even of booleans (a quarter of dense_bytes), breaks the bound.
    assert peak < dense_bytes / 5, f"training allocated {peak / 1e6:.0f} MB at its peak"
