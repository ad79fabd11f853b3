"""Tuning is bounded whatever the shop's size, and training's lean paths give what the plain ones give.

- The tuner measures every setting on at most `max_eval_users` validation customers per list, a seeded
  sample: the card says how many of how many, and the same data gives the same model twice.
- The tuning path (both weightings, the neighbour blend, every grid) on a shop whose customers x
  products matrix would take gigabytes allocates a small fraction of that.
- Training cuts the transactions as int32 codes (`training.Purchases`), not as copies of the table:
  the holdout it builds is the one the table's own time split gives. Customer and product codes come
  from Arrow for Arrow text, and equal pandas' `factorize` / `get_indexer`.
- The item neighbours (cosine of buyer sets, the top 100 per item) equal a dense computation.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from dagster_project import evaluation as ev
from dagster_project.model_card import ModelCard
from dagster_project.sample_data import generate
from dagster_project.scorers import item_neighbours
from dagster_project.training import (
    Purchases,
    TrainingSettings,
    count_matrix,
    evaluation_split,
    factorize,
    positions,
    train_model,
)
from tests.test_training_cost import trained_with_peak
from tests.workspace import prepared_tables

SMALL_GRIDS = dict(  # every stage of the search, each with few values: quick, and still the whole path
    factor_grid=(8, 16),
    shrinkage_grid=(1.0, 10.0),
    rebuy_grid=(0.0, 1.0),
    neighbour_grid=(0.0, 0.3),
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    generate(tmp_path_factory.mktemp("shop"), users=3000, products=400, transactions=40_000, seed=5)
    return prepared_tables(tmp_path_factory.getbasetemp() / "shop0")


def test_tuning_measures_a_capped_seeded_sample_and_the_card_says_so(shop) -> None:
    transactions, products, users = shop
    settings = TrainingSettings(**SMALL_GRIDS, max_eval_users=150, max_test_users=500)
    first = train_model(transactions, products, users, settings)
    tuning = first.card.tuning
    assert tuning is not None and tuning.cap == 150 and tuning.seed == 0
    assert tuning.users == {"new": 150, "rebuy": 150}
    assert tuning.available["new"] > 150 and tuning.available["rebuy"] > 150  # the cap did bind
    assert f"150 of its {tuning.available['new']:,} customers" in first.card.selection

    again = train_model(transactions, products, users, settings)
    assert again.card.trials == first.card.trials and again.params == first.params
    assert again.card.metrics == first.card.metrics
    np.testing.assert_array_equal(again.item_factors, first.item_factors)

    # another seed draws other customers: the tuner's figures move (the served model still fits on everyone)
    other = train_model(transactions, products, users, replace(settings, seed=1))
    assert other.card.tuning.seed == 1 and [t.ndcg for t in other.card.trials] != [t.ndcg for t in first.card.trials]
    assert other.card.users == first.card.users and other.counts.nnz == first.counts.nnz

    document = json.loads(json.dumps(first.card.to_document()))
    assert ModelCard.from_document(document) == first.card
    older = {k: v for k, v in document.items() if k != "tuning"}  # a model file written before the field
    assert ModelCard.from_document(older).tuning is None


def test_a_shop_smaller_than_the_cap_is_measured_on_everyone_and_fixed_settings_have_no_tuning(shop) -> None:
    transactions, products, users = shop
    model = train_model(transactions, products, users, TrainingSettings(**SMALL_GRIDS, max_eval_users=100_000))
    assert model.card.tuning.users == model.card.tuning.available
    assert "sample" not in model.card.selection
    fixed = train_model(transactions, products, users, fixed=model.params)
    assert fixed.card.tuning is None and fixed.card.trials == []


def test_tuning_never_holds_a_dense_customers_by_products_matrix(tmp_path) -> None:
    generate(tmp_path, users=150_000, products=8_000, transactions=200_000, seed=11)
    transactions, products, users = prepared_tables(tmp_path)
    dense_bytes = transactions["user_id"].nunique() * len(products) * 4
    assert dense_bytes > 2e9  # customers x products as float32
    settings = TrainingSettings(
        factor_grid=(8, 16, 32),
        shrinkage_grid=(1.0, 10.0, 100.0),
        weightings=("binary", "log"),  # both bases fitted side by side, as the default tuning does
        rebuy_grid=(0.0, 1.0, 5.0),
        neighbour_grid=(0.0, 0.3, 1.0),
        max_eval_users=1000,
        max_test_users=1000,
    )
    model, peak = trained_with_peak(transactions, products, users, settings=settings)
    assert model.card.tuning.users == {"new": 1000, "rebuy": 1000}
    assert model.card.selection.startswith("chosen on a validation slice")
    # trials are bounded by the grids, not by the data: a coordinate search, never the full product
    grid_product = 3 * 3 * 2 * 3 * 3
    assert len(model.card.trials) < grid_product / 2
    assert peak < dense_bytes / 8, f"training allocated {peak / 1e6:.0f} MB at its peak"


def test_the_coded_cut_is_the_tables_time_split(shop) -> None:
    transactions, products, _ = shop
    rows, customers = factorize(transactions["user_id"])
    items = pd.Index(products["product_id"])
    purchases = Purchases(
        rows, positions(transactions["product_id"], products["product_id"]), transactions["timestamp"].array
    )
    assert rows.dtype == np.int32 and purchases.columns.dtype == np.int32
    shape = (len(customers), len(items))
    split = evaluation_split(purchases, shape, TrainingSettings())
    before, after, cutoff = ev.time_split(transactions)
    assert split.protocol == "time split" and split.cutoff == cutoff
    expected = ev.make_holdout(count_matrix(before, customers, items), count_matrix(after, customers, items))
    for got, want in zip(
        (split.holdout.train, split.holdout.relevant_new, split.holdout.relevant_all),
        (expected.train, expected.relevant_new, expected.relevant_all),
    ):
        assert (got != want).nnz == 0 and got.shape == want.shape
    assert len(split.train) == len(before)
    np.testing.assert_array_equal(
        purchases.counts(shape).toarray().sum(axis=0),
        count_matrix(transactions, customers, items).toarray().sum(axis=0),
    )


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_codes_are_pandas_codes(storage) -> None:
    values = pd.Series(["b", None, "a", "b", "c", "a"], dtype=f"string[{storage}]")
    codes, uniques = factorize(values)
    want_codes, want_uniques = pd.factorize(values)
    np.testing.assert_array_equal(codes, want_codes)
    pd.testing.assert_index_equal(uniques, pd.Index(want_uniques))
    catalogue = pd.Series(["c", "a"], dtype=f"string[{storage}]")
    np.testing.assert_array_equal(positions(values, catalogue), [-1, -1, 1, -1, 0, 1])
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["b", None], ["a", "b"]], type=pa.large_string())))
    np.testing.assert_array_equal(factorize(chunked)[0], [0, -1, 1, 0])
    np.testing.assert_array_equal(positions(chunked, catalogue), [-1, -1, 1, -1])
    # tables read from different files may hold text as Arrow string or large_string: looked up all the same
    small = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["a", "b"]], type=pa.string())))
    np.testing.assert_array_equal(positions(chunked, small), [1, -1, 0, 1])


def test_item_neighbours_are_the_dense_top_cosines() -> None:
    rng = np.random.default_rng(3)
    dense = (rng.random((400, 150)) < rng.random((400, 1)) * 0.2) * rng.integers(1, 4, (400, 150))
    counts = sp.csr_matrix(dense.astype(np.float32))
    keep = 7
    got = item_neighbours(counts, keep).toarray()
    bought = (dense > 0).astype(np.float64)
    buyers = bought.sum(axis=0)
    together = bought.T @ bought
    np.fill_diagonal(together, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.nan_to_num(together / np.sqrt(np.outer(buyers, buyers)))
    for j in range(counts.shape[1]):  # column j: item j's nearest items (ties may fall either way)
        listed = np.flatnonzero(got[:, j])
        candidates = np.flatnonzero(cosine[:, j] > 0)
        assert listed.size == min(keep, candidates.size)
        np.testing.assert_allclose(got[listed, j], cosine[listed, j], rtol=1e-5)
        if listed.size:
            assert cosine[listed, j].min() >= np.sort(cosine[candidates, j])[::-1][listed.size - 1] - 1e-6


def test_the_model_asset_states_its_tuning_sample(tmp_path, sample_source) -> None:
    """A real run of the pipeline (in process): the model's metadata carries whom tuning measured, as the card does."""
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.recommender import load_model
    from tests.workspace import make_workspace

    ws = make_workspace(tmp_path, sample_source)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
            run_config=ws.run_config(), instance=instance, raise_on_error=False
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("collaborative_filtering_model"))
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    card = load_model(ws.model_file).card
    assert card.tuning is not None and card.tuning.cap == TrainingSettings().max_eval_users
    assert metadata["tuning_customers"] == card.tuning.users["new"] > 0
    assert metadata["tuning_customers_available"] == card.tuning.available["new"] >= card.tuning.users["new"]
    assert metadata["tuning_sample_seed"] == card.tuning.seed


def test_items_without_co_buyers_have_no_neighbours() -> None:
    """Products bought alone or never (also the catalogue's last ones) are nobody's neighbour and have none."""
    counts = sp.csr_matrix(
        np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=np.float32)
    )
    for keep, nearest in ((1, {(1, 0), (3, 1), (1, 3)}), (5, {(1, 0), (0, 1), (3, 1), (1, 3)})):
        got = item_neighbours(counts, keep)
        assert set(zip(*got.nonzero())) == nearest
    np.testing.assert_allclose(item_neighbours(counts).toarray()[1], [0.5, 0, 0, np.sqrt(0.5), 0], rtol=1e-6)
    assert item_neighbours(sp.csr_matrix((3, 4), dtype=np.float32)).nnz == 0


def test_customer_profiles_are_the_plain_group_by(shop) -> None:
    """The profiles gathered by int codes are the ones a group-by on the ids and a join give."""
    from dagster_project.training import customer_profiles

    transactions, _, users = shop
    users = users.iloc[::2]  # every other customer is missing from the users table: a buyer-only profile
    got = customer_profiles(users, transactions)
    stats = transactions.groupby("user_id").agg(
        purchases=("user_id", "size"), spend=("amount", "sum"), last_purchase=("timestamp", "max")
    )
    listed = users.drop_duplicates("user_id")["user_id"]
    assert got.index[: len(listed)].tolist() == listed.tolist()
    assert got.index[len(listed) :].tolist() == sorted(set(stats.index) - set(listed))
    for user in [*listed[:20], *got.index[-20:]]:
        row = got.loc[user]
        if user in stats.index:
            want = stats.loc[user]
            assert (row["purchases"], row["last_purchase"]) == (want["purchases"], want["last_purchase"])
            assert row["spend"] == pytest.approx(want["spend"])
        else:
            assert (row["purchases"], row["spend"]) == (0, 0.0) and pd.isna(row["last_purchase"])
    assert str(got["last_purchase"].dtype) == "datetime64[ns, UTC]" and got["purchases"].dtype == "int64"
