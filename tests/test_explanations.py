"""Why each product: the `because` products and the sentence, checked against a brute-force computation;
and the customer list the model carries (purchases, spend, last purchase, search by id, name or e-mail)."""

import zipfile

import numpy as np
import pandas as pd
import pytest

from dagster_project.recommender import FORMAT_VERSION, LIST_COLUMNS, ModelError, load_model, save_model
from dagster_project.scorers import weigh


def brute_force_because(model, user_id, product_id) -> tuple[list[str], float]:
    """Every bought item's term w_j (V D V^T)_{j,i}, from the full item x item matrix: the top 3 and the sum."""
    row = model.user_index(user_id)
    w = weigh(model.counts, model.params.weighting)[row].toarray().ravel().astype(np.float64)
    v = model.item_factors.astype(np.float64)
    item_item = (v * model.factor_weights.astype(np.float64)) @ v.T
    i = model.items.index[model.items["product_id"] == product_id][0]
    terms = w * item_item[:, i]
    bought = np.flatnonzero(w)
    largest = np.abs(w @ item_item).max()
    order = [j for j in bought[np.argsort(-terms[bought], kind="stable")] if terms[j] > 1e-5 * largest][:3]
    return model.items["product_id"].iloc[order].tolist(), float(terms.sum())


def buyers_with_history(model, at_least: int, count: int) -> list[str]:
    per_user = np.diff(model.counts.indptr)
    return [str(u) for u in model.user_ids[per_user >= at_least][:count]]


def test_every_list_has_the_same_columns_in_order(sample_model):
    user = buyers_with_history(sample_model, 2, 1)[0]
    for frame in (
        sample_model.recommend(user),
        sample_model.recommend(user, exclude_purchased=False),
        sample_model.recommend("nobody"),
        sample_model.buy_again(user),
        sample_model.popular(5),
    ):
        assert list(frame.columns) == LIST_COLUMNS


def test_because_names_the_customers_top_contributors(sample_model):
    names = dict(zip(sample_model.items["product_id"], sample_model.items["name"]))
    users = buyers_with_history(sample_model, 4, 15)
    assert len(users) == 15
    for user in users:
        recs = sample_model.recommend(user, n=10)
        bought = set(sample_model.purchase_history(user)["product_id"])
        assert recs["because"].map(len).gt(0).all(), user  # a customer with purchases always gets a reason
        for _, rec in recs.iterrows():
            expected, total = brute_force_because(sample_model, user, rec["product_id"])
            assert rec["because"] == expected, (user, rec["product_id"])
            assert rec["score"] == pytest.approx(total, abs=1e-5)  # the terms add up to the score shown
            assert set(rec["because"]) <= bought and len(rec["because"]) <= 3
            listed = [names[p] for p in rec["because"]]
            assert rec["explanation"].startswith("because you bought " + listed[0])
            assert all(name in rec["explanation"] for name in listed)
    joined = sample_model.recommend(users[0]).iloc[0]
    if len(joined["because"]) == 3:
        a, b, c = (names[p] for p in joined["because"])
        assert joined["explanation"] == f"because you bought {a}, {b} and {c}"


def test_rebuys_say_how_often_and_best_sellers_say_so(sample_model):
    user = buyers_with_history(sample_model, 5, 1)[0]
    history = sample_model.purchase_history(user).set_index("product_id")["purchases"]
    again = sample_model.recommend(user, n=20, exclude_purchased=False)
    own = again[again["reason"] == "buy again"]
    assert len(own) > 0
    for _, rec in own.iterrows():
        times = int(history[rec["product_id"]])
        assert rec["because"] == []
        assert rec["explanation"] == ("you bought it once" if times == 1 else f"you bought it {times} times")
    others = again[again["reason"] != "buy again"]
    assert others["explanation"].str.startswith("because you bought").all()
    top = sample_model.buy_again(user, n=3)
    most = int(history.max())
    assert top["explanation"].iloc[0] == ("you bought it once" if most == 1 else f"you bought it {most} times")
    assert top["because"].map(len).eq(0).all()
    for frame in (sample_model.recommend("nobody", n=5), sample_model.popular(5)):
        assert frame["because"].map(len).eq(0).all()
        assert set(frame["explanation"]) == {"a best-seller"} and set(frame["reason"]) == {"popular"}


def test_customer_list_covers_everyone_buyers_first(sample_model, tmp_path):
    customers = sample_model.customers()
    assert list(customers.columns) == [
        "user_id",
        "name",
        "email",
        "country",
        "purchases",
        "spend",
        "last_purchase",
    ]
    assert len(customers) == customers["user_id"].nunique() >= sample_model.n_users
    assert set(sample_model.user_ids) <= set(customers["user_id"])
    buyers = customers["purchases"] > 0
    assert buyers.sum() == sample_model.n_users and buyers.iloc[: buyers.sum()].all()  # buyers first
    assert customers["purchases"].is_monotonic_decreasing
    user = customers["user_id"].iloc[0]
    assert customers["purchases"].iloc[0] == sample_model.purchase_history(user)["purchases"].sum()
    assert (customers.loc[buyers, "spend"] > 0).all() and customers.loc[buyers, "last_purchase"].notna().all()
    assert customers.loc[~buyers, "last_purchase"].isna().all() and (customers.loc[~buyers, "spend"] == 0).all()

    loaded = load_model(save_model(sample_model, tmp_path / "m.pkl"))  # the file carries all of it
    pd.testing.assert_frame_equal(loaded.customers(), customers)
    assert str(loaded.customers()["last_purchase"].dtype) == "datetime64[ns, UTC]"


def test_search_by_id_name_and_email_with_the_total(sample_model):
    customers = sample_model.customers()
    someone = customers[customers["email"].notna()].iloc[3]
    found, total = sample_model.search_users(someone["email"].upper())
    assert found["user_id"].tolist() == [someone["user_id"]] and total == 1
    with_domain = int(customers["email"].str.contains("@example.com", regex=False).fillna(False).sum())
    assert with_domain > 50
    found, total = sample_model.search_users("@EXAMPLE.com", limit=50)
    assert len(found) == 50 and total == with_domain
    surname = someone["name"].split()[-1]
    by_name, named = sample_model.search_users(surname.lower(), limit=5)
    assert named == int(customers["name"].str.contains(surname, case=False, regex=False).fillna(False).sum())
    assert len(by_name) == min(5, named) and by_name["name"].str.contains(surname).all()
    by_id, _ = sample_model.search_users(f" {someone['user_id']} ")
    assert by_id["user_id"].iloc[0] == someone["user_id"]  # the exact id first
    nothing, none = sample_model.search_users("   ")
    assert nothing.empty and none == 0
    assert sample_model.find_users(surname, limit=3)["user_id"].tolist() == by_name["user_id"].tolist()[:3]


def test_a_model_file_of_the_previous_format_asks_for_retraining(sample_model, tmp_path):
    good = save_model(sample_model, tmp_path / "m.pkl")
    older = tmp_path / "older.pkl"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(older, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "model.json":
                data = data.replace(b'"format_version": %d' % FORMAT_VERSION, b'"format_version": 5')
            dst.writestr(info, data)
    with pytest.raises(ModelError, match=f"model format 5; this version reads {FORMAT_VERSION}.*Retrain"):
        load_model(older)


def test_a_crafted_time_column_is_refused(sample_model, tmp_path):
    """The last-purchase column is plain integers and a validity mask; anything else refuses the file."""
    import io
    import json

    good = save_model(sample_model, tmp_path / "m.pkl")
    with zipfile.ZipFile(good) as src:
        layout = json.loads(src.read("model.json"))["tables"]["user_profiles"]["columns"]
    position = [c["name"] for c in layout].index("last_purchase")
    assert layout[position]["kind"] == "datetime"
    crafted = tmp_path / "crafted.pkl"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(crafted, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == f"user_profiles__{position}__values.npy":
                buffer = io.BytesIO()
                np.save(buffer, np.load(io.BytesIO(data)).astype(np.float64))  # times as floats
                data = buffer.getvalue()
            dst.writestr(info, data)
    with pytest.raises(ModelError, match="damaged time column"):
        load_model(crafted)
