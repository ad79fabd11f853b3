"""Updating every customer's lists after a model update: base and layer hold what a full write holds, whatever
reads them.

A model is trained; a second one differs from it only as an update with a new purchase file makes it: some
customers bought more (their purchase rows and purchase counts change, so they move in the customer order),
some without purchases before bought, new customers came (with purchases or without). `update_for_model` on
the first model's lists must store what `write_for_model` stores for the second: every value of every row (in
another order), the same summary, CSV, Parquet download and filtered reads; the base file untouched. Lists of
another trained model, of a skipped update, or of another product side are written whole; an update that fails
leaves the old lists.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from dagster_project import customer_lists, list_update, model_update
from dagster_project.fileio import own_temp_files, sha256_of
from dagster_project.model_card import ModelParams
from dagster_project.recommender import RecommenderModel
from dagster_project.sample_data import generate
from tests.workspace import assert_same_lists, sorted_lists, train_on


def updated(model: RecommenderModel, seed: int = 5) -> tuple[RecommenderModel, list[str]]:
    """The model after a new purchase file, and the customers who bought in it (ids): 60 buyers bought 1-3 products
    more, 8 customers without purchases bought, 6 new customers came (4 of them bought); the products' side, the
    trained identity and the other customers as they were, the update count one more."""
    rng = np.random.default_rng(seed)
    profiles = model.user_profiles.copy()
    buyers = rng.choice(model.n_users, 60, replace=False)
    cold = rng.choice(np.setdiff1d(profiles.index.to_numpy(), model.user_ids.to_numpy()), 8, replace=False)
    fresh = [f"N{i:03d}" for i in range(6)]
    new_rows = pd.DataFrame(
        {c: profiles[c].iloc[:6].to_numpy() for c in profiles.columns}, index=pd.Index(fresh, dtype="string")
    )
    new_rows["name"] = [f"New Customer {i}" for i in range(6)]
    new_rows["purchases"] = 0
    profiles = pd.concat([profiles, new_rows])
    user_ids = pd.Index([*model.user_ids, *cold, *fresh[:4]], dtype="string")
    counts = model.counts.tocoo()
    rows, items, values = [counts.row], [counts.col], [counts.data]
    for row in [*buyers, *range(model.n_users, len(user_ids))]:
        bought = rng.choice(model.n_items, rng.integers(1, 4), replace=False)
        rows.append(np.full(bought.size, row))
        items.append(bought)
        values.append(np.ones(bought.size, dtype=counts.data.dtype))
        profiles.loc[user_ids[row], "purchases"] += bought.size
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(items))), shape=(len(user_ids), model.n_items)
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    after = dataclasses.replace(
        model,
        user_ids=user_ids,
        user_profiles=profiles,
        counts=matrix.astype(model.counts.dtype),
        card=model_update.counted_updates(model.card, model.card.updates + 1),
    )
    return after, [*model.user_ids[buyers], *cold, *fresh]


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("update-shop")
    generate(out, users=3000, products=2000, transactions=40000, seed=11)
    return out


@pytest.fixture(scope="module", params=["sample", "blend"])
def models(request, sample_model, shop) -> tuple[RecommenderModel, RecommenderModel, list[str]]:
    """(trained model, the same model updated, the customers who bought in the update): the sample model (101
    products, factors only) and a shop of 2,000 products with the neighbour blend (several row groups)."""
    if request.param == "sample":
        before = sample_model
    else:
        before = train_on(shop, ModelParams(factors=16, shrinkage=10.0, weighting="log", neighbour_weight=0.3))
    return (before, *updated(before))


def mark(path: Path, user_id: str) -> None:
    """Change one customer's stored explanations in place (metadata and row groups kept): rows an update copies
    keep the mark, rows it builds again (or a full write) lose it."""
    file = pq.ParquetFile(path)
    groups = [file.read_row_group(i) for i in range(file.num_row_groups)]
    schema = file.schema_arrow
    with pq.ParquetWriter(path.with_suffix(".marked"), schema) as writer:
        for group in groups:
            text = pc.if_else(pc.equal(group["user_id"], user_id), "marked", group["explanation"])
            writer.write_table(group.set_column(schema.get_field_index("explanation"), "explanation", text))
    path.with_suffix(".marked").replace(path)


def drop(path: Path, user_id: str, list_name: str) -> None:
    """Leave one customer's rows on one list out of the stored file (metadata and the other rows kept)."""
    file = pq.ParquetFile(path)
    with pq.ParquetWriter(path.with_suffix(".dropped"), file.schema_arrow) as writer:
        for i in range(file.num_row_groups):
            group = file.read_row_group(i)
            mine = pc.and_(pc.equal(group["user_id"], user_id), pc.equal(group["list"], list_name))
            writer.write_table(group.filter(pc.invert(mine)))
    path.with_suffix(".dropped").replace(path)


def marked(storage: Path, user_id: str) -> bool:
    frame = customer_lists.read(storage, filters=[("user_id", "==", user_id)])
    return bool(len(frame)) and bool((frame["explanation"] == "marked").all())


def test_an_update_stores_what_a_full_write_stores(models, tmp_path):
    before, after, bought = models
    storage, full, copied = tmp_path / "updated", tmp_path / "full", tmp_path / "copied"
    path = customer_lists.write_for_model(before, storage)
    base = sha256_of(path)
    assert customer_lists.update_for_model(after, storage, bought) == path
    expected = customer_lists.write_for_model(after, full)
    old = customer_lists.read(customer_lists.write_for_model(before, copied).parents[1])
    kept = old.loc[~old["user_id"].isin(bought), "user_id"].iloc[-1]
    mark(customer_lists.dataset_path(copied), kept)
    mark(customer_lists.dataset_path(copied), bought[0])
    customer_lists.update_for_model(after, copied, bought)
    # the others' rows are kept (the update did not fall back to a full write), the buyers' built again
    assert marked(copied, kept) and not marked(copied, bought[0])

    # the base untouched, the changed customers' lists in the layer beside it; together what a full write stores,
    # whatever reads them: every value of every row, catalogue and lineage, summary, CSV, Parquet download, preview
    assert sha256_of(path) == base and customer_lists.layer_path(storage).is_file()
    assert not customer_lists.layer_path(full).exists()
    assert_same_lists(storage, full)
    frame = customer_lists.read(storage)
    assert frame.attrs["catalogue"] == customer_lists.catalogue_counts(after)
    for user in (bought[0], bought[-1], kept):
        one = customer_lists.read(storage, filters=[("user_id", "==", user)])
        pd.testing.assert_frame_equal(one, customer_lists.read(full, filters=[("user_id", "==", user)]))
        assert len(one) == 20

    # the update changed what it had to: the new customers are listed, the buyers' lists moved
    assert set(frame["user_id"]) == set(after.customers()["user_id"]) == set(old["user_id"]) | set(bought)
    changed = [u for u in bought if u in set(old["user_id"])]
    lists = frame.groupby("user_id")["product_id"].agg(tuple)
    old_lists = old.groupby("user_id")["product_id"].agg(tuple)
    assert (lists[changed] != old_lists[changed]).any()
    assert sorted_lists(pq.read_table(expected).to_pandas())["user_id"].equals(sorted_lists(frame)["user_id"])

    # the same update again (the lists already from this model) changes nothing, also when every customer without
    # purchases is named
    customer_lists.update_for_model(after, storage, bought[:3])
    assert_same_lists(storage, full)
    cold = after.customers().query("purchases == 0")["user_id"].tolist()
    catalogue = customer_lists.catalogue_counts(after)
    assert cold and list_update.update(after, storage, cold, 10, catalogue) == len(cold)
    assert_same_lists(storage, full)
    assert sha256_of(path) == base


def test_lists_of_another_model_are_written_whole(sample_model, tmp_path):
    after, bought = updated(sample_model)
    kept = next(u for u in sample_model.user_ids if u not in set(bought))
    full = tmp_path / "full"
    card = sample_model.card
    cases = {  # the lists stored before the update: from which model, how long
        "nothing stored": None,
        "another trained model": (
            dataclasses.replace(sample_model, card=dataclasses.replace(card, trained_at="2020-01-01T00:00:00+00:00")),
            10,
        ),
        "an update skipped": (dataclasses.replace(sample_model, card=model_update.counted_updates(card, -1)), 10),
        "other products' popularity": (dataclasses.replace(sample_model, popularity=sample_model.popularity + 1), 10),
        "another list length": (sample_model, 5),
    }
    customer_lists.write_for_model(after, full)
    for case, stored_from in cases.items():
        storage = tmp_path / case.replace(" ", "-")
        if stored_from is not None:
            path = customer_lists.write_for_model(*stored_from[:1], storage, n=stored_from[1])
            mark(path, kept)
        path = customer_lists.update_for_model(after, storage, bought)
        assert not marked(storage, kept), case
        assert not customer_lists.layer_path(storage).exists(), case  # a full write: a new base, no layer
        assert_same_lists(storage, full)
    assert list_update.stored_lineage(path)["updates"] == 1

    # customers the stored lists lack (new ones the caller did not name) are built all the same, on both lists
    storage = tmp_path / "unnamed"
    customer_lists.write_for_model(sample_model, storage)
    named = [u for u in bought if not u.startswith("N")]
    assert list_update.update(after, storage, named, 10, customer_lists.catalogue_counts(after)) == len(bought)
    assert_same_lists(storage, full)


def test_a_failed_update_keeps_the_previous_lists(models, tmp_path, monkeypatch):
    before, after, bought = models
    path = customer_lists.write_for_model(before, tmp_path)
    saved, old = sha256_of(path), customer_lists.read(tmp_path)
    written = []

    def disk_fills(self, table, *args, **kwargs):
        if len(written) == 1:
            raise OSError(28, "No space left on device")
        written.append(table.num_rows)
        return real(self, table, *args, **kwargs)

    real = pq.ParquetWriter.write_table
    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_fills)
    with pytest.raises(OSError, match="No space left"):
        customer_lists.update_for_model(after, tmp_path, bought)
    monkeypatch.undo()
    assert written and sha256_of(path) == saved and not own_temp_files(path.parent)
    assert not customer_lists.layer_path(tmp_path).exists()
    pd.testing.assert_frame_equal(customer_lists.read(tmp_path), old)
    csv = pd.read_csv(io.BytesIO(customer_lists.to_csv_bytes(old)), dtype=str, keep_default_na=False)
    assert len(csv) == len(old)
