"""The recommender on small hand-built data: who gets what, and why."""

import io
import json
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dagster_project import evaluation as ev
from dagster_project.model_card import ModelCard
from dagster_project.ranking import top_k
from dagster_project.recommender import FORMAT_VERSION, ModelError, ModelParams, load_model, save_model
from dagster_project.scorers import BuyAgain, Popularity, ShrunkSvd, SvdBasis
from dagster_project.training import train_model
from tests.attacks import Planted, pickle_era_model

# Two tastes: users 1-6 buy fruit (a, b, c), users 7-12 buy tools (x, y, z); "a" is the best-seller.
ITEMS = pd.DataFrame(
    {
        "product_id": list("abcxyz"),
        "name": ["Apple", "Banana", "Cherry", "Axe", "Yoke", "Zip"],
        "category": ["fruit"] * 3 + ["tools"] * 3,
        "brand": "k",
        "price": [1.0, 2, 3, 40, 50, 60],
    }
)


def purchases():
    rows = []
    t = pd.Timestamp("2026-01-01", tz="UTC")
    fruit = {1: "ab", 2: "ab", 3: "ac", 4: "abc", 5: "bc", 6: "a"}
    tools = {7: "xy", 8: "xz", 9: "xyz", 10: "yz", 11: "xy", 12: "a"}
    for user, items in {**fruit, **tools}.items():
        for i, item in enumerate(items):
            rows.append(
                {
                    "user_id": str(user),
                    "product_id": item,
                    "quantity": 1,
                    "amount": 1.0,
                    "timestamp": t + pd.Timedelta(days=user * 3 + i),
                }
            )
    for user in range(13, 20):  # extra buyers make "a" the best-seller
        rows.append(
            {
                "user_id": str(user),
                "product_id": "a",
                "quantity": 1,
                "amount": 1.0,
                "timestamp": t + pd.Timedelta(days=user),
            }
        )
    rows.append(
        {"user_id": "7", "product_id": "x", "quantity": 1, "amount": 1.0, "timestamp": t + pd.Timedelta(days=60)}
    )
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
        pd.testing.assert_frame_equal(
            loaded.recommend(user, exclude_purchased=False), model.recommend(user, exclude_purchased=False)
        )
    pd.testing.assert_frame_equal(loaded.similar_items("a"), model.similar_items("a"))
    assert loaded.profile(3) == model.profile(3)
    assert loaded.card == model.card
    assert loaded.card.params.factors == 2 and loaded.params == model.params


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
    with pytest.raises(ModelError, match="damaged, truncated or crafted"):
        load_model(tmp_path / "truncated.pkl")
    future = tmp_path / "future.pkl"
    with zipfile.ZipFile(tmp_path / "m.pkl") as src, zipfile.ZipFile(future, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "model.json":
                data = data.replace(b'"format_version": %d' % FORMAT_VERSION, b'"format_version": 9')
            dst.writestr(info, data)
    with pytest.raises(ModelError, match="model format 9"):
        load_model(future)


def test_loading_never_runs_code_from_the_file(model, tmp_path):
    """Files with a pickle inside, in every form a loader might meet, are refused and run nothing."""
    marker = tmp_path / "ran"
    (tmp_path / "old_format.pkl").write_bytes(pickle_era_model(marker))  # valid header of the pickle era
    (tmp_path / "bare.pkl").write_bytes(pickle.dumps(Planted(marker)))
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
    for name, message in [
        ("old_format.pkl", "earlier RecoMart version"),
        ("bare.pkl", "not a RecoMart model"),
        ("object_array.pkl", "not plain numbers"),
    ]:
        with pytest.raises(ModelError, match=message):
            load_model(tmp_path / name)
    assert not marker.exists()


def rewrite_member(src: Path, dst: Path, change) -> Path:
    """A copy of a model file with its members changed by `change(name, bytes) -> {name: bytes}`."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            for name, data in change(info.filename, old.read(info)).items():
                new.writestr(name, data)
    return dst


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_crafted_model_files_are_refused_not_crashed(model, tmp_path):
    """Every way a crafted file tried to break the loader ends in a ModelError that quotes nothing from it."""
    good = save_model(model, tmp_path / "m.pkl")

    def in_document(old: bytes, new: bytes):
        return lambda name, data: {name: data.replace(old, new) if name == "model.json" else data}

    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as inner:
        inner.writestr("x.npy", npy(np.zeros(3)))
    cases = {
        "npz_as_array": lambda name, data: {name: nested.getvalue() if name == "popularity.npy" else data},
        "huge_shape": in_document(b'"counts_shape": [', b'"counts_shape": [1e400, '),
        "markdown_version": in_document(
            b'"format_version": %d' % FORMAT_VERSION, b'"format_version": "[click](http://evil.example)"'
        ),
        "repeated_names": in_document(b'"arrays": [', b'"arrays": ["popularity", "popularity", '),
        "text_offsets_out_of_range": lambda name, data: {
            name: npy(np.array([0, 10**9] * 20, dtype=np.int64)[: len(np.load(io.BytesIO(data)))])
            if name.endswith("__offsets.npy")
            else data
        },
        "text_as_objects": lambda name, data: {
            name: npy(np.array(["x"] * len(np.load(io.BytesIO(data))), dtype=object))
            if name.endswith("__data.npy")
            else data
        },
    }
    for case, change in cases.items():
        path = rewrite_member(good, tmp_path / f"{case}.pkl", change)
        with pytest.raises(ModelError) as refused:
            load_model(path)
        assert "evil" not in str(refused.value) and "click" not in str(refused.value), case
    raw = bytearray(good.read_bytes())  # every member claims to be encrypted (general-purpose flag bit 0)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at >= 0:
            raw[at + flag_at] |= 0x1
            at = raw.find(signature, at + 4)
    (tmp_path / "encrypted.pkl").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="unexpected archive layout"):
        load_model(tmp_path / "encrypted.pkl")


class FixedScores:
    """A scorer whose scores are given: evaluation must rank and count exactly these."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float32)

    def fit(self, counts):
        return self

    def score(self, rows):
        return self.scores[rows]


def test_metrics_on_a_known_ranking():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    holdout = ev.make_holdout(train, test)
    # "new" lists, bought items excluded. User 0 (relevant b, d): c, d -> one hit, at rank 2.
    # User 1 (relevant c): d, c -> one hit, at rank 2.
    scores = FixedScores([[9, 1, 8, 7], [0, 9, 1, 5]])
    result = ev.evaluate(scores, holdout, "new", k=2)
    second = 1 / np.log2(3)  # the gain of a hit at rank 2
    ndcg_user0 = second / (1 + second)  # ideal: both relevant items at ranks 1 and 2
    ndcg_user1 = second / 1.0  # ideal: the one relevant item at rank 1
    assert result.users == 2
    assert result.precision == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result.recall == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert result.ndcg == pytest.approx((ndcg_user0 + ndcg_user1) / 2)
    assert result.hit_rate == 1.0 and result.coverage == pytest.approx(2 / 4)  # c and d only
    rebuy = ev.evaluate(scores, holdout, "rebuy", k=2)  # nothing excluded: user 0 gets a, c; user 1 b, d
    assert (rebuy.users, rebuy.hit_rate, rebuy.coverage) == (2, 0.0, 1.0)


def test_top_k_ranks_best_first_and_never_returns_excluded_items():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, -np.inf, 1.0, -np.inf]])
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 2]]
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [0, 2, -1]]  # only two allowed items in row 1
    assert top_k(scores, 10).tolist() == [[1, 3, 2, 0], [0, 2, -1, -1]]  # k beyond the catalogue
    assert top_k(scores[0], 2).tolist() == [1, 3]  # one row, as served
    assert top_k(np.array([np.nan, 2.0, 1.0]), 3).tolist() == [1, 2, -1]
    assert top_k(scores, 0).shape == (2, 0)


# Users 0-2 buy items 0 and 1, users 3-4 buy items 2 and 3; user 0 bought item 0 three times.
COUNTS = sp.csr_matrix(
    np.array([[3, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0]], dtype=np.float32)
)


def test_popularity_and_buy_again_scorers():
    rows = np.array([0, 4])
    popularity = Popularity().fit(COUNTS).score(rows)
    assert popularity.tolist() == [[3, 2, 2, 1]] * 2  # buyers per item, the same for everyone
    again = BuyAgain().fit(COUNTS).score(rows)
    assert np.argsort(-again[0])[:2].tolist() == [0, 1]  # own purchases first, the most bought first
    assert np.argsort(-again[1])[:2].tolist() == [2, 0]  # then the best-seller
    assert again[1, 0] < 1 <= again[1, 2]


def test_shrunk_svd_scorer_matches_its_formula():
    params = ModelParams(factors=2, shrinkage=1.0, weighting="binary", rebuy_weight=0.5)
    binary = (COUNTS.toarray() > 0).astype(np.float64)
    _, s, vt = np.linalg.svd(binary)
    v, s2 = vt[:2].T, s[:2] ** 2
    weights = s2 / (s2 + s2.mean())  # shrinkage 1: lambda is the mean squared singular value
    expected = binary @ v @ np.diag(weights) @ v.T
    rows = np.arange(5)
    scores = ShrunkSvd(params).fit(COUNTS).score(rows)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert scores[2, 1] > scores[2, 2]  # user 2 (item 0) is pointed to item 1, not the other taste

    def scaled(x):
        return x / np.abs(x).max(axis=1, keepdims=True)

    rebuy = ShrunkSvd(params, rebuy=True).fit(COUNTS).score(rows)
    np.testing.assert_allclose(rebuy, scaled(expected) + 0.5 * scaled(np.log1p(COUNTS.toarray())), atol=1e-4)


def test_shrunk_svd_from_a_shared_basis():
    """The tuner fits one basis per weighting and tries lower ranks on it: the same as fitting at that rank."""
    basis = SvdBasis.fit(COUNTS, "log", rank=3)
    params = ModelParams(factors=2, shrinkage=0.0, weighting="log")
    shared = ShrunkSvd(params).fit_basis(basis).score(np.arange(5))
    np.testing.assert_allclose(shared, ShrunkSvd(params).fit(COUNTS).score(np.arange(5)), atol=1e-4)
    with pytest.raises(ValueError, match="binary model"):
        ShrunkSvd(replace(params, weighting="binary")).fit_basis(basis)


def test_any_scorer_goes_through_the_same_evaluation():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    holdout = ev.make_holdout(train, test)
    # Best-sellers a > b > c > d, bought items excluded: users get c, b, b, a; all but user 1 (d) hit.
    best_sellers = ev.evaluate(Popularity().fit(holdout.train), holdout, "new", k=1)
    assert (best_sellers.users, best_sellers.precision, best_sellers.coverage) == (4, 3 / 4, 3 / 4)


def test_the_card_round_trips_and_refuses_what_does_not_fit(model):
    document = json.loads(json.dumps(model.card.to_document()))
    assert ModelCard.from_document(document) == model.card
    assert model.card.params == model.params and model.card.measured == ("new" in model.card.metrics)
    for broken in (
        {**document, "users": "many"},
        {k: v for k, v in document.items() if k != "holdout"},
        {**document, "extra": 1},
        {**document, "params": {**document["params"], "weighting": "cubic"}},
        {**document, "metrics": {"new": {"svd": {"ndcg": 0.5}}}},
    ):
        with pytest.raises(ValueError):
            ModelCard.from_document(broken)


def test_time_split_keeps_the_latest_for_testing():
    tx = purchases()
    train, test, cutoff = ev.time_split(tx, 0.25)
    assert train["timestamp"].max() < cutoff <= test["timestamp"].min()
    assert len(test) == pytest.approx(len(tx) * 0.25, abs=2)


def test_profiles_and_user_search(model):
    last = pd.Timestamp("2026-01-11", tz="UTC")  # what the shop knows, and what the customer bought
    assert model.profile(3) == {"user_id": "3", "name": "User 3", "purchases": 2, "spend": 2.0, "last_purchase": last}
    assert model.profile("nobody") == {}
    assert model.find_users("user 1")["user_id"].tolist()[:3] == ["1", "10", "11"]
    assert model.find_users("7")["user_id"].tolist() == ["7", "17"]  # the exact id first, then names


def test_only_published_versions_are_listed_or_pruned(model, tmp_path):
    """Planted names never count as kept versions, so they can never push real ones out."""
    from dagster_project import model_store

    versions = tmp_path / "versions"
    versions.mkdir()
    for junk in ("collaborative_filtering-zzzz.pkl", "collaborative_filtering-99999999T999999Z-x y.pkl"):
        (versions / junk).write_bytes(b"junk")
    names = [f"20260101T00000{i}Z-run{i}" for i in range(7)]
    for name in names:
        model_store.publish(model, tmp_path, name)
    kept = [model_store.version_name(p) for p in model_store.list_versions(tmp_path)]
    assert kept == sorted(names, reverse=True)[: model_store.KEEP_VERSIONS]
    assert (versions / "collaborative_filtering-zzzz.pkl").read_bytes() == b"junk"  # never listed, never deleted
