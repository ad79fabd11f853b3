"""Preparation drops what the rules reject (with reasons) and fixes what can be fixed; features add up."""

import numpy as np
import pandas as pd
import pytest

from dagster_project import features, preparation
from tests.workspace import small_frames as frames


@pytest.fixture
def prepared():
    f = frames()
    products, _ = preparation.prepare_products(f)
    users, users_dropped = preparation.prepare_users(f)
    tx, tx_dropped = preparation.prepare_transactions(f, products)
    return users, users_dropped, products, tx, tx_dropped


def test_users_are_deduplicated_and_bad_values_cleared(prepared):
    users, dropped, *_ = prepared
    assert users["user_id"].tolist() == ["1", "2", "3"]
    assert dropped == {"user_id_unique": 1}
    assert users["email"].isna().tolist() == [False, True, True]
    assert users["age"].tolist()[0] == 30 and users["age"].isna().tolist()[1:] == [True, True]
    assert users["age_scaled"].iloc[0] == 0.0


def test_transactions_keep_only_valid_rows_with_reasons(prepared):
    *_, products, tx, dropped = prepared
    assert len(tx) == 2
    assert dropped == {"user_known": 1, "product_known": 1, "transaction_not_duplicated": 1}
    assert str(tx["timestamp"].dt.tz) == "UTC"
    assert tx.loc[tx["product_id"] == "B", "timestamp"].iloc[0] == pd.Timestamp("2026-01-31 22:00", tz="UTC")
    amounts = tx.set_index("product_id")["amount"]
    assert amounts["A"] == 1.5 and pd.isna(amounts["B"])  # B has no valid price to fall back on


def test_purchases_prepared_from_a_table_read_for_it_alone_are_the_same(prepared):
    """The pipeline lets preparation drop each raw column once used (one copy of the purchases held): the same
    rows and counts come out, with list prices filled where a line has no unit price."""
    *_, products, tx, dropped = prepared
    f = frames()
    f.transactions.loc[f.transactions["product_id"] == "A", "unit_price"] = None  # A's list price is used
    again, again_dropped = preparation.prepare_transactions(f, products, consume=True)
    assert again_dropped == dropped
    assert again.set_index("product_id")["amount"]["A"] == products.set_index("product_id")["price"]["A"]
    prices = ["unit_price", "amount"]
    pd.testing.assert_frame_equal(again.drop(columns=prices), tx.drop(columns=prices))
    assert not {"transaction_id", "user_id", "product_id", "timestamp", "quantity", "unit_price"} & set(f.transactions)


def test_products_encode_categories_and_clear_bad_prices(prepared):
    _, _, products, *_ = prepared
    assert products["price"].isna().tolist() == [False, True]
    assert products["category"].tolist() == ["Uncategorized", "Uncategorized"]


def test_features_sum_to_the_transactions():
    tx = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2"],
            "product_id": ["a", "a", "b", "a"],
            "quantity": [1, 2, 1, 5],
            "amount": [10.0, 20.0, 5.0, 50.0],
            "timestamp": pd.to_datetime(["2026-01-01", "2026-01-05", "2026-01-03", "2026-01-10"], utc=True),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "category": ["x", "y", "y"],
            "brand": ["k", "k", "k"],
            "price": [10.0, 5.0, 1.0],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "age": [30, 40, None],
            "gender": ["F", "M", "Unknown"],
            "country": ["US", "DE", "FR"],
            "gender_code": [0, 1, 2],
            "country_code": [0, 1, 2],
            "age_scaled": [0.0, 1.0, None],
        }
    )
    inter = features.interaction_table(tx).set_index(["user_id", "product_id"])
    assert inter.loc[("u1", "a"), "purchases"] == 2 and inter.loc[("u1", "a"), "quantity"] == 3
    uf = features.user_features(tx, users, products).set_index("user_id")
    assert uf.loc["u1", "total_spend"] == 35.0 and uf.loc["u1", "favourite_category"] == "x"
    assert uf.loc["u3", "transactions"] == 0 and uf.loc["u2", "recency_days"] == 0.0
    items = features.item_features(tx, products).set_index("product_id")
    assert items.loc["a", "buyers"] == 2 and items.loc["a", "repeat_buyer_share"] == 0.5
    assert items.loc["c", "purchases"] == 0 and items.loc["a", "popularity_rank"] == 1
    # the pipeline builds the three tables at once (ids coded once): the figures are the same
    built = features.build(tx, users, products)
    pd.testing.assert_frame_equal(built[0].set_index("user_id"), uf)
    pd.testing.assert_frame_equal(built[1].set_index("product_id"), items)
    pd.testing.assert_frame_equal(built[2].set_index(["user_id", "product_id"]), inter)
    # a tie between categories goes to the first by name; a user who bought nothing has none
    tied = pd.concat([tx, tx.iloc[[2]].assign(user_id="u2", product_id="b")], ignore_index=True)
    favourite = features.user_features(tied, users, products).set_index("user_id")["favourite_category"]
    assert favourite["u2"] == "x" and pd.isna(favourite["u3"])
    z_first = products.assign(category=["z", "y", "y"])
    assert features.user_features(tied, users, z_first).set_index("user_id")["favourite_category"]["u2"] == "y"


def test_postage_and_fees_are_not_products():
    products = pd.DataFrame(
        {
            "product_id": ["POST", "M", "DOT", "P1", "P2", "BANK CHARGES"],
            "name": ["POSTAGE", "Manual", "DOTCOM POSTAGE", "Voltix Charger", "Manual Coffee Grinder", "Bank Charges"],
        },
        dtype="string",
    )
    tx = pd.DataFrame(
        {"user_id": ["1", "1", "2", "2"], "product_id": ["POST", "P1", "M", "P2"], "timestamp": ["2026-01-01"] * 4},
        dtype="string",
    )
    users = pd.DataFrame({"user_id": ["1", "2"]}, dtype="string")
    f = frames(users=users, products=products, transactions=tx)
    kept, dropped = preparation.prepare_products(f)
    assert kept["product_id"].tolist() == ["P1", "P2"] and dropped == {"not_merchandise": 4}
    prepared_tx, tx_dropped = preparation.prepare_transactions(f, kept)
    assert prepared_tx["product_id"].tolist() == ["P1", "P2"] and tx_dropped == {"product_excluded": 2}
    everything, _ = preparation.prepare_products(f, non_product_pattern="")
    assert len(everything) == 6


def test_products_without_an_id_are_dropped_and_bad_prices_cleared():
    products = pd.DataFrame(
        {"product_id": ["A", None, "B", "C"], "name": ["a", "b", "c", "d"], "price": ["1", "2", "1e309", "10"]},
        dtype="string",
    )
    tx = pd.DataFrame(
        {
            "user_id": ["1", "1", "1"],
            "product_id": ["A", "B", "C"],
            "unit_price": ["1e309", "2", "3"],
            "timestamp": ["2026-01-01", "1500-01-01", "2026-01-02"],
        },
        dtype="string",
    )
    f = frames(products=products, transactions=tx)
    kept, dropped = preparation.prepare_products(f)
    assert kept["product_id"].tolist() == ["A", "B", "C"] and dropped == {"product_id_present": 1}
    assert pd.isna(kept.set_index("product_id").loc["B", "price"])
    assert kept["price_scaled"].dropna().tolist() == [0.0, 1.0]
    prepared_tx, tx_dropped = preparation.prepare_transactions(f, kept)
    assert prepared_tx["product_id"].tolist() == ["C"]
    assert tx_dropped == {"unit_price_valid": 1, "timestamp_valid": 1}


def test_a_model_that_cannot_be_measured_says_so():
    from dagster_project import training

    tx = pd.DataFrame(
        {
            "user_id": [f"u{i % 3}" for i in range(30)],
            "product_id": [f"p{i % 7}" for i in range(30)],
            "quantity": 1,
            "amount": 1.0,
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    products = pd.DataFrame(
        {"product_id": [f"p{i}" for i in range(7)], "name": "n", "category": "c", "brand": "b", "price": 1.0}
    )
    users = pd.DataFrame({"user_id": ["u0", "u1", "u2"]})
    card = training.train_model(tx, products, users).card
    assert card.measured is False and card.metrics == {}
    assert set(card.not_measured) == {"new", "rebuy"} and card.selection.startswith("default settings")


def test_identical_timestamps_fall_back_to_a_random_holdout():
    import numpy as np

    from dagster_project import training

    rng = np.random.default_rng(0)
    tx = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in rng.integers(0, 60, 900)],
            "product_id": [f"p{i}" for i in rng.integers(0, 40, 900)],
            "quantity": 1,
            "amount": 1.0,
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    products = pd.DataFrame(
        {"product_id": [f"p{i}" for i in range(40)], "name": "n", "category": "c", "brand": "b", "price": 1.0}
    )
    users = pd.DataFrame({"user_id": tx["user_id"].unique()})
    card = training.train_model(tx, products, users).card
    assert card.measured and card.holdout.protocol == "random split" and card.holdout.cutoff is None
    assert card.metrics["new"]["svd"].users >= 10


def test_favourite_categories_are_the_same_from_a_dense_table_or_a_group_by(monkeypatch):
    """Many customers and categories use the group-by: both ways pick the most bought, ties by name."""
    rng = np.random.default_rng(3)
    n = 4000
    tx = pd.DataFrame(
        {
            "user_id": pd.array(rng.integers(0, 300, n).astype(str), dtype="string"),
            "product_id": pd.array(rng.integers(0, 50, n).astype(str), dtype="string"),
            "quantity": rng.integers(1, 3, n),
            "amount": rng.random(n),
            "timestamp": pd.to_datetime(rng.integers(1_600_000_000, 1_700_000_000, n), unit="s", utc=True),
        }
    )
    products = pd.DataFrame({"product_id": [str(i) for i in range(50)], "category": [f"c{i % 7}" for i in range(50)]})
    pairs = features._Pairs.of(features.interaction_table(tx))
    dense = features._favourite_category(pairs, products)
    monkeypatch.setattr(features, "DENSE_CELLS", 0)
    grouped = features._favourite_category(pairs, products)
    pd.testing.assert_series_equal(dense.sort_index(), grouped.sort_index())
    assert dense.nunique() > 3 and len(dense) == 300
