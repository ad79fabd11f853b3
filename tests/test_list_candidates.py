"""The customer lists from candidates are the lists the dense scores give.

On a generated shop of 2,000 products, with the blend with item neighbours, without it, and with popularity
debiasing (flatter item norms, so the bounds settle fewer customers): for every customer the candidates settle,
both top-10 lists are the dense path's, item for item; the written file equals the dense one; the bound the
candidates rest on holds for every item; and a bound that is wrong is caught by these same comparisons.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dagster_project import list_building, list_candidates
from dagster_project.model_card import ModelParams
from dagster_project.sample_data import generate
from tests.workspace import train_on

PARAMS = {
    "blend": ModelParams(factors=16, shrinkage=10.0, weighting="log", neighbour_weight=0.3),
    "factors only": ModelParams(factors=16, shrinkage=10.0, weighting="binary", neighbour_weight=0.0),
    "debiased": ModelParams(factors=32, shrinkage=1.0, weighting="log", neighbour_weight=0.5, popularity_exponent=0.5),
}
HEADS = (16, 64, 256)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("candidates")
    generate(out, users=3000, products=2000, transactions=40000, seed=11)
    return out


@pytest.fixture(scope="module", params=list(PARAMS))
def model(request, shop):
    return train_on(shop, PARAMS[request.param])


def blocks(model, size: int = 512):
    rows = np.arange(model.n_users)
    return [rows[start : start + size] for start in range(0, rows.size, size)]


def mismatches(model, ranked: list_candidates.RankedItems) -> tuple[int, int, int]:
    """(settled customers, settled customers whose lists, scores or largest score differ from the dense path's,
    customers)."""
    settled = wrong = 0
    for rows in blocks(model):
        found = list_candidates.score(model, ranked, rows, 10)
        new, again, own, largest = list_building._score(model, rows, 10)
        same = (found.new_items == new.items).all(axis=1) & (found.again_items == again.items).all(axis=1)
        same &= np.isclose(found.new_scores, new.scores, rtol=1e-5, atol=1e-6).all(axis=1)
        same &= np.isclose(found.again_scores, again.scores, rtol=1e-5, atol=1e-6).all(axis=1)
        same &= np.isclose(found.largest, largest, rtol=1e-6)
        owner = np.repeat(np.arange(rows.size), np.diff(model.counts[rows].indptr))
        off = ~np.isclose(found.own_scores, own, rtol=1e-4, atol=1e-6 * float(largest.max()))
        same[owner[off]] = False
        settled += int(found.settled.sum())
        wrong += int((found.settled & ~same).sum())
    return settled, wrong, model.n_users


def test_settled_customers_get_the_dense_top_10_item_for_item(model) -> None:
    shares = []
    for head in HEADS:
        settled, wrong, customers = mismatches(model, list_candidates.RankedItems.of(model, head))
        assert wrong == 0, (head, wrong)
        shares.append(settled / customers)
    assert shares == sorted(shares) and shares[0] < 1.0, shares  # a longer head settles more; the dense path runs
    if model.params.popularity_exponent == 0:  # long-tailed norms: the candidates settle most customers
        assert shares[-1] > 0.5, shares
        assert list_candidates.pays_off(model, list_candidates.RankedItems.of(model, 256), np.arange(model.n_users))
    else:  # debiased, flat norms: few are settled, and the lists skip the attempt (scored densely, as before)
        assert not list_candidates.pays_off(model, list_candidates.RankedItems.of(model, 256), np.arange(model.n_users))


def test_a_bound_that_leaves_out_too_much_is_caught(model) -> None:
    """The comparison above can fail: claim nothing outside a short head scores above zero, and some settled
    customer's lists differ from the dense ones."""
    ranked = dataclasses.replace(list_candidates.RankedItems.of(model, 16), beyond=0.0)
    settled, wrong, _ = mismatches(model, ranked)
    assert settled >= wrong > 0


def test_every_item_outside_the_head_scores_within_the_bound(model) -> None:
    ranked = list_candidates.RankedItems.of(model, 64)
    outside = ranked.order[64:]
    for rows in blocks(model):
        scores, _ = model.factor_scores(rows)
        q = np.asarray(model.weighted[rows] @ model.item_factors).astype(np.float64)
        reach = np.linalg.norm(q, axis=1)
        assert (np.abs(scores) <= reach[:, None] * ranked.norms * (1 + 1e-5) + 1e-12).all()
        assert (np.abs(scores[:, outside]) <= (reach * ranked.beyond)[:, None] * (1 + 1e-5) + 1e-12).all()


def test_the_written_lists_are_the_dense_lists(model) -> None:
    """Every row, rank, reason and explanation of the file as the dense path writes it; scores to 1e-6."""
    candidates = pa.concat_tables(list_building.build(model, block=300, head=64))
    dense = pa.concat_tables(list_building.build(model, block=300, head=0))
    assert candidates.num_rows == dense.num_rows == 2 * 10 * len(model.customers())
    for column in candidates.column_names:
        if column == "score":
            np.testing.assert_allclose(candidates[column].to_numpy(), dense[column].to_numpy(), atol=2e-6)
        else:
            assert candidates[column].equals(dense[column]), column


def test_best_ranks_as_the_wide_top_k_with_ties_and_short_rows() -> None:
    """The candidates' top-n picking ranks like ranking.top_k_wide: best first, equal values by lower item, -inf
    never, -1 where a row has fewer; with a known floor or without, rows untied and tied alike."""
    from dagster_project.ranking import top_k_wide

    rng = np.random.default_rng(5)
    values = rng.standard_normal((300, 700)).astype(np.float32)
    values[rng.random(values.shape) < 0.02] = -np.inf  # bought
    values[3, :695] = -np.inf  # fewer than 10 left
    values[4] = -np.inf  # nothing left
    values[6, 100:140] = 9.0  # ties across the 10th place
    items = np.arange(700)
    expected = top_k_wide(values, 10)
    floor = np.sort(values, axis=1)[:, -10]
    for known in (None, floor, floor - 1.0):
        got, scores = list_candidates.best(values, items, 10, known)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(scores[got >= 0], np.take_along_axis(values, np.maximum(got, 0), 1)[got >= 0])
    untied = np.delete(values, [3, 4, 6], axis=0)  # every row has exactly 10 at or above its 10th best
    np.testing.assert_array_equal(list_candidates.best(untied, items, 10)[0], top_k_wide(untied, 10))
    shuffled = rng.permutation(700)  # items other than the column: ties go to the lower item
    tied = np.zeros((1, 700), dtype=np.float32)
    assert list_candidates.best(tied, shuffled, 3)[0].tolist() == [[0, 1, 2]]


def test_the_head_neighbours_give_the_same_lists_dense_or_sparse(model, monkeypatch) -> None:
    """Small catalogues keep the head's neighbour columns dense, large ones sparse: the same sums, bit for bit."""
    dense = list_candidates.RankedItems.of(model, 256)
    monkeypatch.setattr(list_candidates, "DENSE_NEAR", 0)
    sparse = list_candidates.RankedItems.of(model, 256)
    assert isinstance(dense.near, np.ndarray) and not isinstance(sparse.near, np.ndarray)
    for rows in blocks(model):
        one, other = (list_candidates.score(model, ranked, rows, 10) for ranked in (dense, sparse))
        for field in dataclasses.fields(one):
            np.testing.assert_array_equal(getattr(one, field.name), getattr(other, field.name), field.name)
