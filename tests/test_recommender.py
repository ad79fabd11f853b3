"""The recommender on small hand-built data: who gets what, and why."""

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from dagster_project import evaluation as ev
from dagster_project.ranking import top_k
from dagster_project.recommender import ModelError, ModelParams, load_model, save_model
from dagster_project.training import train_model

# Two tastes: users 1-6 buy fruit (a, b, c), users 7-12 buy tools (x, y, z); "a" is the best-seller.
ITEMS = pd.DataFrame({"product_id": list("abcxyz"), "name": ["Apple", "Banana", "Cherry", "Axe", "Yoke", "Zip"],
                      "category": ["fruit"] * 3 + ["tools"] * 3, "brand": "k", "price": [1.0, 2, 3, 40, 50, 60]})


def purchases():
    rows = []
    t = pd.Timestamp("2026-01-01", tz="UTC")
    fruit = {1: "ab", 2: "ab", 3: "ac", 4: "abc", 5: "bc", 6: "a"}
    tools = {7: "xy", 8: "xz", 9: "xyz", 10: "yz", 11: "xy", 12: "a"}
    for user, items in {**fruit, **tools}.items():
        for i, item in enumerate(items):
            rows.append({"user_id": str(user), "product_id": item, "quantity": 1, "amount": 1.0,
                         "timestamp": t + pd.Timedelta(days=user * 3 + i)})
    for user in range(13, 20):  # extra buyers make "a" the best-seller
        rows.append({"user_id": str(user), "product_id": "a", "quantity": 1, "amount": 1.0,
                     "timestamp": t + pd.Timedelta(days=user)})
    rows.append({"user_id": "7", "product_id": "x", "quantity": 1, "amount": 1.0, "timestamp": t + pd.Timedelta(days=60)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def model():
    users = pd.DataFrame({"user_id": [str(i) for i in range(1, 21)], "name": [f"User {i}" for i in range(1, 21)]})
    return train_model(purchases(), ITEMS, users, fixed=ModelParams(factors=2, shrinkage=0.0, weighting="binary"))


def test_recommends_what_similar_customers_bought(model):
    recs = model.recommend(1, n=2)  # user 1 bought a, b: the fruit they lack comes first
    assert recs["product_id"].iloc[0] == "c"
    assert list(recs.columns[:6]) == ["rank", "product_id", "name", "category", "brand", "price"]
    assert recs["score"].is_monotonic_decreasing
    tools = model.recommend("10", n=1)  # user 10 bought y, z
    assert tools["product_id"].tolist() == ["x"]


def test_excludes_purchases_unless_asked(model):
    assert not set(model.recommend(4, n=6)["product_id"]) & {"a", "b", "c"}
    rebuy = model.recommend(7, n=3, exclude_purchased=False)
    assert rebuy["product_id"].iloc[0] == "x"  # bought twice
    assert rebuy.loc[0, "reason"] == "buy again"


def test_unknown_and_cold_users_get_best_sellers(model):
    for user in ("nobody", 20):  # 20 is a known user without purchases
        recs = model.recommend(user, n=3)
        assert recs["product_id"].iloc[0] == "a" and set(recs["reason"]) == {"popular"}
    assert model.knows_user(20) and not model.knows_user("nobody")


def test_ids_as_int_or_text(model):
    pd.testing.assert_frame_equal(model.recommend(3), model.recommend("3"))
    pd.testing.assert_frame_equal(model.recommend(3), model.recommend(" 3.0 "))


def test_similar_items_stay_in_taste(model):
    similar = model.similar_items("x", n=2)
    assert set(similar["product_id"]) == {"y", "z"}
    with pytest.raises(KeyError):
        model.similar_items("nope")


def test_buy_again_and_history(model):
    assert model.buy_again(7)["product_id"].tolist()[0] == "x"
    history = model.purchase_history(7)
    assert history.set_index("product_id")["purchases"].to_dict() == {"x": 2, "y": 1}


def test_save_and_load_round_trip(model, tmp_path):
    path = save_model(model, tmp_path / "m.pkl")
    loaded = load_model(path)
    for user in ("1", "7", "12", "unknown"):
        pd.testing.assert_frame_equal(loaded.recommend(user), model.recommend(user))
        pd.testing.assert_frame_equal(loaded.recommend(user, exclude_purchased=False),
                                      model.recommend(user, exclude_purchased=False))
    pd.testing.assert_frame_equal(loaded.similar_items("a"), model.similar_items("a"))
    assert loaded.profile(3) == model.profile(3)
    assert loaded.card == json.loads(json.dumps(model.card, default=str))
    assert loaded.card["params"]["factors"] == 2 and loaded.params == model.params


class Planted:
    """An object whose unpickling would create a file: the attack a model loader must never fall for."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bad_model_files_give_clear_errors(model, tmp_path):
    with pytest.raises(ModelError, match="No model at"):
        load_model(tmp_path / "missing.pkl")
    (tmp_path / "foreign.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ModelError, match="not a RecoMart model file"):
        load_model(tmp_path / "foreign.pkl")
    good = save_model(model, tmp_path / "m.pkl").read_bytes()
    (tmp_path / "damaged.pkl").write_bytes(good[:200] + bytes(b ^ 0xFF for b in good[200:260]) + good[260:])
    with pytest.raises(ModelError, match="damaged"):
        load_model(tmp_path / "damaged.pkl")
    (tmp_path / "truncated.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="damaged or truncated"):
        load_model(tmp_path / "truncated.pkl")
    future = tmp_path / "future.pkl"
    with zipfile.ZipFile(tmp_path / "m.pkl") as src, zipfile.ZipFile(future, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "model.json":
                data = data.replace(b'"format_version": 3', b'"format_version": 9')
            dst.writestr(info, data)
    with pytest.raises(ModelError, match="model format 9"):
        load_model(future)


def test_loading_never_runs_code_from_the_file(model, tmp_path):
    """Files with a pickle inside, in every form a loader might meet, are refused and run nothing."""
    marker = tmp_path / "ran"
    payload = pickle.dumps(Planted(marker))
    header = b"RECOMART-MODEL 2 %s\n" % hashlib.sha256(payload).hexdigest().encode()
    (tmp_path / "old_format.pkl").write_bytes(header + payload)  # valid header of the pickle era
    (tmp_path / "bare.pkl").write_bytes(payload)
    good = tmp_path / "m.pkl"
    save_model(model, good)
    object_array = tmp_path / "object_array.pkl"  # a .npy member that needs pickle to load
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(object_array, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "popularity.npy":
                buffer = io.BytesIO()
                np.save(buffer, np.array([Planted(marker)], dtype=object), allow_pickle=True)
                data = buffer.getvalue()
            dst.writestr(info, data)
    for name, message in [("old_format.pkl", "earlier RecoMart version"), ("bare.pkl", "not a RecoMart model"),
                          ("object_array.pkl", "not plain numbers")]:
        with pytest.raises(ModelError, match=message):
            load_model(tmp_path / name)
    assert not marker.exists()


def test_metrics_on_a_known_ranking():
    import scipy.sparse as sp
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    holdout = ev.make_holdout(train, test)
    # "new" lists, bought items excluded. User 0 (relevant b, d): c, d -> one hit, at rank 2.
    # User 1 (relevant c): d, c -> one hit, at rank 2.
    scores = np.array([[9, 1, 8, 7], [0, 9, 1, 5]], dtype=np.float32)
    result = ev.evaluate(lambda rows: scores[rows], holdout, "new", k=2)
    second = 1 / np.log2(3)  # the gain of a hit at rank 2
    ndcg_user0 = second / (1 + second)  # ideal: both relevant items at ranks 1 and 2
    ndcg_user1 = second / 1.0  # ideal: the one relevant item at rank 1
    assert result["users"] == 2
    assert result["precision"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result["recall"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert result["ndcg"] == pytest.approx((ndcg_user0 + ndcg_user1) / 2)
    assert result["hit_rate"] == 1.0 and result["coverage"] == pytest.approx(2 / 4)  # c and d only
    rebuy = ev.evaluate(lambda rows: scores[rows], holdout, "rebuy", k=2)  # nothing excluded: a, c; b, d
    assert (rebuy["users"], rebuy["hit_rate"], rebuy["coverage"]) == (2, 0.0, 1.0)


def test_top_k_ranks_best_first_and_never_returns_excluded_items():
    scores = np.array([[0.1, 0.9, 0.5, 0.7],
                       [3.0, -np.inf, 1.0, -np.inf]])
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 2]]
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [0, 2, -1]]  # only two allowed items in row 1
    assert top_k(scores, 10).tolist() == [[1, 3, 2, 0], [0, 2, -1, -1]]  # k beyond the catalogue
    assert top_k(scores[0], 2).tolist() == [1, 3]  # one row, as served
    assert top_k(np.array([np.nan, 2.0, 1.0]), 3).tolist() == [1, 2, -1]
    assert top_k(scores, 0).shape == (2, 0)


def test_time_split_keeps_the_latest_for_testing():
    tx = purchases()
    train, test, cutoff = ev.time_split(tx, 0.25)
    assert train["timestamp"].max() < cutoff <= test["timestamp"].min()
    assert len(test) == pytest.approx(len(tx) * 0.25, abs=2)


def test_profiles_and_user_search(model):
    assert model.profile(3) == {"user_id": "3", "name": "User 3"}
    assert model.profile("nobody") == {}
    assert model.find_users("user 1")["user_id"].tolist()[:3] == ["1", "10", "11"]
    assert model.find_users("7")["user_id"].tolist() == ["7", "17"]  # the exact id first, then names
