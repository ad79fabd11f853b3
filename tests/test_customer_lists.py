"""Every customer's lists as one Parquet file: the same lists `recommend()` gives, written whole or not at all,
and materialized by the complete pipeline through the live webserver."""

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dagster_project import customer_lists
from dagster_project.fileio import own_temp_files, sha256_of
from dagster_project.recommender import load_model


@pytest.fixture(scope="module")
def stored(sample_model, tmp_path_factory):
    """The sample model's lists written in blocks of 100 customers (several row groups)."""
    storage = tmp_path_factory.mktemp("storage")
    path = customer_lists.write(
        customer_lists.build(sample_model, block=100),
        customer_lists.dataset_path(storage),
        customer_lists.catalogue_counts(sample_model),
    )
    return storage, path


def test_one_row_per_customer_list_and_rank(sample_model, stored):
    storage, path = stored
    assert path == storage / "user_recommendations" / "user_recommendations.parquet"
    assert pq.ParquetFile(path).num_row_groups > 5
    frame = customer_lists.read(storage)
    assert list(frame.columns) == customer_lists.COLUMNS
    assert not frame.duplicated(["user_id", "list", "rank"]).any()
    customers = sample_model.customers()
    assert set(frame["user_id"]) == set(customers["user_id"])
    assert frame.groupby(["user_id", "list"]).size().eq(10).all()
    assert set(frame["list"]) == {"new", "buy_again"}
    assert frame.groupby(["user_id", "list"])["rank"].apply(lambda r: r.tolist() == list(range(1, 11))).all()
    named = frame.drop_duplicates("user_id").set_index("user_id")
    expected = customers.set_index("user_id")
    assert named["customer_name"].equals(expected.loc[named.index, "name"].rename("customer_name"))
    assert named["email"].fillna("").equals(expected.loc[named.index, "email"].fillna("").rename("email"))


def test_the_lists_are_what_recommend_shows(sample_model, stored):
    storage, _ = stored
    frame = customer_lists.read(storage)
    buyers = np.random.default_rng(3).choice(sample_model.user_ids.to_numpy(), 40, replace=False)
    compared = ["product_id", "reason", "because", "explanation"]
    for user in buyers:
        mine = frame[frame["user_id"] == user]
        for list_name, single in (
            ("new", sample_model.recommend(user, n=10)),
            ("buy_again", sample_model.recommend(user, n=10, exclude_purchased=False)),
        ):
            got = mine[mine["list"] == list_name].reset_index(drop=True)
            assert got[compared].to_dict("list") == single[compared].to_dict("list"), (user, list_name)
            np.testing.assert_allclose(got["score"], single["score"], atol=2e-6)
            assert got["product_name"].tolist() == single["name"].tolist()
    cold = set(sample_model.customers().query("purchases == 0")["user_id"])
    assert cold
    fallback = frame[frame["user_id"].isin(cold)]
    best = sample_model.popular(10)["product_id"].tolist()
    assert set(fallback["reason"]) == {"popular"} and set(fallback["explanation"]) == {"a best-seller"}
    assert fallback.groupby(["user_id", "list"])["product_id"].apply(list).map(lambda p: p == best).all()
    assert fallback["because"].map(len).eq(0).all()
    assert set(frame.loc[~frame["user_id"].isin(cold), "reason"]) == {"similar customers", "buy again"}


def test_summary_of_what_is_recommended(sample_model, stored):
    storage, _ = stored
    frame = customer_lists.read(storage)
    summary = customer_lists.summary(storage)
    customers = frame["user_id"].nunique()
    cold = (sample_model.customers()["purchases"] == 0).sum()
    assert summary["customers"] == customers and summary["rows"] == len(frame)
    assert summary["coverage"] == pytest.approx(frame["product_id"].nunique() / sample_model.n_items)
    assert 0 < summary["coverage"] <= 1
    new_products = frame.loc[frame["list"] == "new", "product_id"].nunique()
    assert summary["new_coverage"] == pytest.approx(new_products / sample_model.n_items)
    assert summary["new_coverage"] <= summary["coverage"]
    assert summary["fallback_share"] == pytest.approx(cold / customers)
    top = summary["top_products"]
    assert list(top.columns) == ["product_id", "name", "category", "customers"] and len(top) == 10
    first = top.iloc[0]
    assert first["customers"] == frame.loc[frame["product_id"] == first["product_id"], "user_id"].nunique()
    assert top["customers"].is_monotonic_decreasing
    by_category = summary["coverage_by_category"]
    assert list(by_category.columns) == ["category", "products_recommended", "products_in_catalogue", "share"]
    assert by_category["products_in_catalogue"].sum() == sample_model.n_items
    assert by_category["products_recommended"].sum() == frame["product_id"].nunique()
    assert (by_category["share"] <= 1).all()
    from_frame = customer_lists.summary(frame)  # a frame read earlier gives the same summary
    assert from_frame["coverage"] == summary["coverage"] and from_frame["top_products"].equals(top)


def test_csv_download_keeps_every_row_and_the_because_ids(stored):
    storage, _ = stored
    frame = customer_lists.read(storage, filters=[("list", "==", "new")])
    back = pd.read_csv(io.BytesIO(customer_lists.to_csv_bytes(frame)), dtype=str, keep_default_na=False)
    assert len(back) == len(frame) and list(back.columns) == customer_lists.COLUMNS
    explained = frame["because"].map(len) > 1
    row = frame[explained].iloc[0]
    assert back.loc[explained.to_numpy()].iloc[0]["because"] == "; ".join(row["because"])


def test_a_failed_write_keeps_the_previous_lists(sample_model, tmp_path):
    path = customer_lists.write_for_model(sample_model, tmp_path)
    before = sha256_of(path)

    def breaks_half_way():
        tables = customer_lists.build(sample_model, block=50)
        yield next(tables)
        yield next(tables)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        customer_lists.write(breaks_half_way(), path)
    assert sha256_of(path) == before and not own_temp_files(path.parent)
    assert customer_lists.read(tmp_path)["user_id"].nunique() == len(sample_model.customers())
    with pytest.raises(FileNotFoundError, match="run the complete pipeline"):
        customer_lists.read(tmp_path / "elsewhere")


def test_the_complete_pipeline_materializes_the_lists(trained, live):
    """A real complete_pipeline_job run through the live webserver made them, with their figures."""
    storage = live.workspace.storage
    frame = customer_lists.read(storage)
    model = load_model(live.workspace.model_file)
    assert set(frame["user_id"]) == set(model.customers()["user_id"])
    assert not frame.duplicated(["user_id", "list", "rank"]).any()
    user = model.user_ids[0]
    mine = frame[(frame["user_id"] == user) & (frame["list"] == "new")]
    assert mine["product_id"].tolist() == model.recommend(user)["product_id"].tolist()
    assert mine["because"].map(len).gt(0).all()

    (latest,) = live.api.materializations("user_recommendations", limit=1)
    made_by = live.api.run(latest["run_id"])  # `trained`, or a later refresh of another test on this instance
    assert made_by.job_name == "complete_pipeline_job" and made_by.status == "SUCCESS"
    meta = latest["metadata"]
    path = customer_lists.dataset_path(storage)
    assert meta["path"] == str(path) and meta["sha256"] == sha256_of(path)
    assert meta["records"] == len(frame) and meta["size_bytes"] == path.stat().st_size
    summary = customer_lists.summary(storage)
    assert meta["customers"] == summary["customers"]
    assert meta["products_recommended"] == frame["product_id"].nunique()
    assert meta["coverage"] == pytest.approx(summary["coverage"], abs=1e-4)
    assert meta["new_products_coverage"] == pytest.approx(summary["new_coverage"], abs=1e-4)
    assert meta["fallback_share"] == pytest.approx(summary["fallback_share"], abs=1e-4)
    assert "top_categories" in meta and summary["top_categories"]["category"].iloc[0] in str(meta["top_categories"])


def test_wide_top_k_picks_what_top_k_picks():
    """The block-maximum shortcut the lists use ranks exactly like the plain selection."""
    from dagster_project.ranking import top_k, top_k_wide

    rng = np.random.default_rng(7)
    scores = rng.standard_normal((300, 5000))
    scores[rng.random(scores.shape) < 0.01] = -np.inf  # bought items are excluded
    scores[3, :4995] = -np.inf  # fewer than k left
    scores[4] = -np.inf  # nothing left
    scores[5, ::7] += 50  # the best all in one stride
    for k in (1, 10, 40):
        np.testing.assert_array_equal(top_k_wide(scores, k), top_k(scores, k))
    assert (top_k_wide(scores, 10)[3] >= 0).sum() == 5 and (top_k_wide(scores, 10)[4] == -1).all()
    np.testing.assert_array_equal(top_k_wide(scores[:, :12], 10), top_k(scores[:, :12], 10))  # narrow rows


def test_lists_longer_than_the_catalogue(sample_model, tmp_path):
    """A shop with fewer products than a list holds (one product, say): every product once, as recommend() does."""
    n = sample_model.n_items + 5
    path = customer_lists.write(
        customer_lists.build(sample_model, n=n, block=100), customer_lists.dataset_path(tmp_path)
    )
    frame = pq.read_table(path).to_pandas()
    buyer = sample_model.user_ids[0]
    for list_name, single in (
        ("new", sample_model.recommend(buyer, n=n)),
        ("buy_again", sample_model.recommend(buyer, n=n, exclude_purchased=False)),
    ):
        got = frame[(frame["user_id"] == buyer) & (frame["list"] == list_name)]
        assert len(got) == len(single) and set(got["product_id"]) == set(single["product_id"]), list_name
        assert got["product_id"].tolist()[:10] == single["product_id"].tolist()[:10], list_name  # deep ties may swap
    assert frame.groupby(["user_id", "list"]).size().max() == sample_model.n_items


def test_blocks_scored_side_by_side_give_the_same_tables_in_the_same_order(sample_model):
    from dagster_project import list_building

    one = list(list_building.build(sample_model, block=100, workers=1))
    two = list(list_building.build(sample_model, block=100, workers=2))
    assert len(one) == len(two) > 6  # many blocks, more than the threads keep in flight
    assert all(a.equals(b) for a, b in zip(one, two, strict=True))
