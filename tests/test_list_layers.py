"""The stored customer lists as a base file and a layer of the customers changed since: nightly updates write the
layer only, and everything that reads the lists (read, filters, preview, summary, CSV, the Parquet download, the
Recommendations page) gives what a full write gives; full writes, roll-backs, readers in between and a damaged
layer never give lists that are silently wrong.

The updates are made as the nightly refresh makes them (`model_update.update_model` with new purchases): customers
who bought again, customers without purchases before who now bought (from best-sellers to their own lists), new
customers.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from dagster_project import customer_lists, list_building, list_layers, list_update, model_update
from dagster_project.fileio import own_temp_files, sha256_of
from dagster_project.recommender import RecommenderModel
from tests.apptest import open_page, texts
from tests.workspace import assert_same_lists, sorted_lists


def bought(model: RecommenderModel, seed: int, again: int = 40, cold: int = 6, new: int = 4) -> tuple:
    """The model after a purchase file (as the nightly refresh updates it) and the customers who bought in it:
    `again` customers with purchases bought 1-3 products more, `cold` customers without purchases bought (their
    best-sellers give way to lists of their own), `new` new customers bought."""
    rng = np.random.default_rng(seed)
    customers = model.customers()
    without = customers.loc[customers["purchases"] == 0, "user_id"].to_numpy()
    who = [
        *rng.choice(model.user_ids.to_numpy(), again, replace=False),
        *rng.choice(without, min(cold, len(without)), replace=False),
        *(f"NEW{seed}-{i}" for i in range(new)),
    ]
    counts = rng.integers(1, 4, len(who))
    purchases = pd.DataFrame(
        {
            "user_id": pd.array(np.repeat(who, counts), dtype="string"),
            "product_id": model.items["product_id"].to_numpy()[rng.integers(0, model.n_items, counts.sum())],
            "amount": 1.0,
            "timestamp": pd.Timestamp("2026-11-27", tz="UTC") + pd.Timedelta(days=seed),
        }
    )
    after, _ = model_update.update_model(model, purchases, model_update.training_data({}, "", None), [f"d{seed}.csv"])
    return after, [str(u) for u in who]


@pytest.fixture(scope="module")
def nights(sample_model) -> list[tuple[RecommenderModel, list[str]]]:
    """The sample model and two nightly updates on top of it (the second also to customers of the first)."""
    first = bought(sample_model, 1)
    second = bought(first[0], 2)
    return [(sample_model, []), first, second]


def test_updates_write_a_layer_that_adds_up_night_after_night(nights, tmp_path):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage = tmp_path / "lists"
    base = customer_lists.write_for_model(trained, storage)
    saved = sha256_of(base)
    assert not customer_lists.layer_path(storage).exists()
    assert customer_lists.stored_relation(first, storage) == "previous"
    customer_lists.update_for_model(first, storage, buyers1)
    assert customer_lists.stored_relation(first, storage) == "current"
    full1 = tmp_path / "full1"
    customer_lists.write_for_model(first, full1)
    assert_same_lists(storage, full1)
    layer = customer_lists.read(storage).iloc[-20 * len(set(buyers1)) :]  # the layer's rows come last
    assert set(layer["user_id"]) == set(buyers1)

    # the next night: the layer holds the customers of both nights (the second night's lists where they bought
    # on both), the base is still the full write's
    assert customer_lists.stored_relation(second, storage) == "previous"
    customer_lists.update_for_model(second, storage, buyers2)
    assert sha256_of(base) == saved == customer_lists.base_sha256(storage)  # (kept beside the base: not hashed again)
    changed = pd.unique(pq.read_table(customer_lists.layer_path(storage), columns=["user_id"])["user_id"].to_numpy())
    assert set(changed) == set(buyers1) | set(buyers2) and len(changed) < len(second.customers()) / 4
    full2 = tmp_path / "full2"
    customer_lists.write_for_model(second, full2)
    assert_same_lists(storage, full2)
    for user in (buyers1[0], buyers2[0], buyers2[-1], trained.user_ids[-1]):
        one = customer_lists.read(storage, filters=[("user_id", "==", user)], columns=["user_id", "rank", "score"])
        pd.testing.assert_frame_equal(
            one, customer_lists.read(full2, filters=[("user_id", "==", user)], columns=["user_id", "rank", "score"])
        )
        assert len(one) == 20
    personal = [("list", "==", "new"), ("reason", "!=", "popular")]
    new = customer_lists.read(storage, filters=personal)
    pd.testing.assert_frame_equal(sorted_lists(new), sorted_lists(customer_lists.read(full2, filters=personal)))

    # what the nights changed in the summary: customers who bought for the first time left the best-sellers
    before, after = customer_lists.summary(full1), customer_lists.summary(storage)
    cold = [u for u in buyers2 if u in set(first.customers().query("purchases == 0")["user_id"])]
    fallback = [round(s["fallback_share"] * s["customers"]) for s in (before, after)]
    assert cold and fallback[1] == fallback[0] - len(cold)
    assert after["customers"] == before["customers"] + 4

    # a full write after updates: a new base, the layer gone
    customer_lists.write_for_model(second, storage)
    assert not customer_lists.layer_path(storage).exists() and sha256_of(base) != saved
    assert_same_lists(storage, full2)


def test_a_reader_sees_one_consistent_pair_while_lists_are_written(nights, tmp_path):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage, full1, full2 = tmp_path / "lists", tmp_path / "full1", tmp_path / "full2"
    customer_lists.write_for_model(first, full1)
    customer_lists.write_for_model(second, full2)
    customer_lists.write_for_model(trained, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    old_layer = tmp_path / "old-layer.parquet"
    shutil.copy2(customer_lists.layer_path(storage), old_layer)

    # a reader that opened the lists before a full write keeps reading the lists it opened, whole
    with list_layers.opened(storage) as stored:
        customer_lists.write_for_model(second, storage)
        held = sorted_lists(list_layers.frame_of(stored.read()))
    pd.testing.assert_frame_equal(held, sorted_lists(customer_lists.read(full1)))

    # a full write stopped between its new base and removing the layer: the old layer names the old base, so
    # readers ignore it and see the new base whole; an update on top ignores it too
    shutil.copy2(old_layer, customer_lists.layer_path(storage))
    assert customer_lists.stored_relation(second, storage) == "current"
    assert_same_lists(storage, full2)
    assert customer_lists.stored_relation(first, storage) == "other"  # roll-back: the layer's model is not read
    customer_lists.update_for_model(second, storage, buyers2[:5])
    assert_same_lists(storage, full2)


def test_a_roll_back_writes_everything_and_drops_the_layer(nights, tmp_path):
    (trained, _), (first, buyers1), _ = nights
    storage, full = tmp_path / "lists", tmp_path / "full"
    customer_lists.write_for_model(trained, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    other = dataclasses.replace(trained, card=dataclasses.replace(trained.card, trained_at="2020-01-01T00:00:00+00:00"))
    assert customer_lists.stored_relation(other, storage) == "other"
    base = sha256_of(customer_lists.dataset_path(storage))
    customer_lists.update_for_model(other, storage, buyers1)
    assert not customer_lists.layer_path(storage).exists() and sha256_of(customer_lists.dataset_path(storage)) != base
    customer_lists.write_for_model(other, full)
    assert_same_lists(storage, full)
    assert customer_lists.stored_lineage(storage)["trained_at"] == "2020-01-01T00:00:00+00:00"


def test_a_damaged_layer_is_an_error_never_lists_without_their_changes(nights, tmp_path):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage, full = tmp_path / "lists", tmp_path / "full"
    customer_lists.write_for_model(trained, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    layer = customer_lists.layer_path(storage)
    layer.write_bytes(layer.read_bytes()[: layer.stat().st_size // 2])  # cut short: its footer lost
    for reader in (customer_lists.read, customer_lists.summary, customer_lists.preview, customer_lists.parquet_bytes):
        with pytest.raises(customer_lists.DamagedLists, match=r"changes\.parquet cannot be read.*complete refresh"):
            reader(storage)
    assert customer_lists.stored_lineage(storage) == {}
    assert customer_lists.stored_relation(second, storage) == "other"

    # the next update writes everything again instead
    customer_lists.update_for_model(second, storage, buyers2)
    assert not layer.exists()
    customer_lists.write_for_model(second, full)
    assert_same_lists(storage, full)


def zero_data(path: Path) -> None:
    """Damage a Parquet file's data and keep its footer readable (as a bad block would)."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[4 : len(data) - 8 - footer] = bytes(len(data) - 12 - footer)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damaged", ["layer", "base"])
def test_damaged_data_behind_a_readable_footer_is_named_and_written_again(nights, tmp_path, damaged):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage, full = tmp_path / "lists", tmp_path / "full"
    customer_lists.write_for_model(trained, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    zero_data(customer_lists.layer_path(storage) if damaged == "layer" else customer_lists.dataset_path(storage))
    for reader in (customer_lists.read, customer_lists.preview, customer_lists.parquet_bytes):
        with pytest.raises(customer_lists.DamagedLists, match=r"recommendations\.parquet.*cannot be read.*complete"):
            reader(storage)
    assert customer_lists.stored_relation(second, storage) == "previous"  # the footers still say so

    # the nightly update cannot build on them: it writes everything again
    customer_lists.update_for_model(second, storage, buyers2)
    assert not customer_lists.layer_path(storage).exists()
    customer_lists.write_for_model(second, full)
    assert_same_lists(storage, full)


def test_a_failed_update_keeps_the_previous_base_and_layer(nights, tmp_path, monkeypatch):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage = tmp_path / "lists"
    customer_lists.write_for_model(trained, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    files = {p.name: sha256_of(p) for p in customer_lists.folder_path(storage).iterdir()}
    before = customer_lists.read(storage)
    real = pq.ParquetWriter.write_table

    def disk_fills(self, table, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_fills)
    with pytest.raises(OSError, match="No space left"):
        customer_lists.update_for_model(second, storage, buyers2)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert {p.name: sha256_of(p) for p in customer_lists.folder_path(storage).iterdir()} == files
    assert not own_temp_files(customer_lists.folder_path(storage))
    pd.testing.assert_frame_equal(customer_lists.read(storage), before)
    assert customer_lists.stored_relation(first, storage) == "current"


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """Every file the page offers for download, by file name: the callable made on click."""
    offered: dict[str, object] = {}
    real_deferred = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        offered[file_name] = data_callable
        return real_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return offered


def test_the_recommendations_page_reads_base_and_layer(app_env, trained, nights, downloads, tmp_path, monkeypatch):
    (model, _), (first, buyers1), (second, buyers2) = nights
    storage, full = tmp_path / "storage", tmp_path / "full"
    customer_lists.write_for_model(model, storage)
    customer_lists.update_for_model(first, storage, buyers1)
    customer_lists.update_for_model(second, storage, buyers2)
    customer_lists.write_for_model(second, full)
    assert customer_lists.layer_path(storage).is_file()
    summary = customer_lists.summary(full)  # what a full write's page says
    monkeypatch.setenv("RECOMART_STORAGE_DIR", str(storage))
    at = open_page("recommendations")
    assert not at.exception, at.exception
    shown = texts(at)
    assert f"Every one of the {summary['customers']:,} customers has a list" in shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Customers with a list"] == f"{summary['customers']:,}"
    assert metrics["Best-sellers instead"] == f"{summary['fallback_share']:.0%}"

    want = sorted_lists(customer_lists.read(full))
    csv = pd.read_csv(io.BytesIO(downloads["recommendations_all_customers.csv"]()), dtype=str, keep_default_na=False)
    expected = pd.read_csv(io.BytesIO(customer_lists.to_csv_bytes(want)), dtype=str, keep_default_na=False)
    csv = csv.astype({"rank": int}).pipe(sorted_lists).astype({"rank": str})
    pd.testing.assert_frame_equal(csv, expected)
    parquet = pq.read_table(io.BytesIO(downloads["recommendations_all_customers.parquet"]())).to_pandas()
    parquet["because"] = parquet["because"].map(list)
    pd.testing.assert_frame_equal(sorted_lists(parquet), want, check_like=False)

    # the page's cached summary follows the files: a full write of another model's lists shows at once
    customer_lists.write_for_model(model, storage)
    at = open_page("recommendations")
    assert f"Every one of the {customer_lists.summary(storage)['customers']:,} customers has a list" in texts(at)


def test_lists_stored_before_layers_are_built_on(nights, tmp_path):
    """A base without an id (written before layers were) is named by its file: an update adds a layer to it, and
    a full write's new file is another base."""
    (trained, _), (first, buyers1), _ = nights
    storage, full = tmp_path / "lists", tmp_path / "full"
    path = customer_lists.write(
        customer_lists.build(trained),
        customer_lists.dataset_path(storage),
        customer_lists.catalogue_counts(trained),
        list_update.lineage(trained, 10),
    )
    saved = sha256_of(path)
    customer_lists.update_for_model(first, storage, buyers1)
    assert customer_lists.layer_path(storage).is_file() and sha256_of(path) == saved
    customer_lists.write_for_model(first, full)
    assert_same_lists(storage, full)
    layer = customer_lists.layer_path(storage).read_bytes()
    customer_lists.write_for_model(trained, storage)
    customer_lists.layer_path(storage).write_bytes(layer)  # the old layer back: it names the old file, ignored
    assert customer_lists.stored_relation(trained, storage) == "current"
    assert len(customer_lists.read(storage)) == customer_lists.summary(storage)["rows"]
    assert set(customer_lists.read(storage)["user_id"]) == set(trained.customers()["user_id"])


def reads_of_base_ids(monkeypatch) -> list[object]:
    """Every time an update reads the base's customer ids to learn where their rows are (no usable record)."""
    real = list_layers.BaseRecord.of_base
    calls: list[object] = []

    def of_base(cls, source):
        calls.append(source)
        return real(source)

    monkeypatch.setattr(list_layers.BaseRecord, "of_base", classmethod(of_base))
    return calls


def test_a_full_write_keeps_where_each_customers_rows_are(nights, tmp_path, monkeypatch):
    """The record beside the base places every row; updates on top read neither the base's ids nor its other
    customers' row groups, and still store what a full write stores."""
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage, full1, full2 = tmp_path / "lists", tmp_path / "full1", tmp_path / "full2"
    for model, folder in ((first, full1), (second, full2), (trained, storage)):
        customer_lists.write_for_model(model, folder)
    with list_layers.opened(storage) as stored:
        record = stored.record()
        base = stored.read(["user_id"])
    assert record is not None and len(record.customers) == len(set(trained.customers()["user_id"]))
    assert record.group.max() == pq.ParquetFile(customer_lists.dataset_path(storage)).num_row_groups - 1
    placed = record.customers.take(pa.array(np.repeat(record.customer, record.rows)))
    assert placed.equals(base["user_id"].combine_chunks())
    # in the model's order: the next models' first customers are the base's (new ones join after them)
    assert record.customers.equals(list_building.profile_ids(trained))
    assert record.members(list_building.profile_ids(second)).tolist() == [True] * len(record.customers) + [False] * 8

    reads = reads_of_base_ids(monkeypatch)
    groups: list[int] = []
    real_read = pq.ParquetFile.read_row_group

    def read_row_group(self, i, *args, **kwargs):
        groups.append(i)
        return real_read(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    customer_lists.update_for_model(first, storage, buyers1)
    leaving = np.isin(record.customers.to_numpy(zero_copy_only=False), buyers1)[record.customer]  # per run
    assert not reads and set(groups) == set(record.group[leaving]) and leaving.any()
    assert_same_lists(storage, full1)
    customer_lists.update_for_model(second, storage, buyers2)
    assert not reads
    assert_same_lists(storage, full2)


@pytest.mark.parametrize("record", ["missing", "of another base", "cut short", "not the base's rows"])
def test_without_a_record_of_its_base_an_update_reads_the_base_ids_and_keeps_one(nights, tmp_path, monkeypatch, record):
    (trained, _), (first, buyers1), (second, buyers2) = nights
    storage, full1, full2 = tmp_path / "lists", tmp_path / "full1", tmp_path / "full2"
    for model, folder in ((first, full1), (second, full2), (trained, storage)):
        customer_lists.write_for_model(model, folder)
    path = list_layers.record_path(storage)
    if record == "missing":  # lists written before the record was kept
        path.unlink()
    elif record == "of another base":
        shutil.copy2(list_layers.record_path(full1), path)
    elif record == "cut short":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # whole and of this base, but its runs leave a row out
        with list_layers.opened(storage) as stored:
            kept, base_id = stored.record(), stored.base_id
        shifted = dataclasses.replace(kept, first=kept.first + (np.arange(len(kept.first)) == 1))
        list_layers.write_record(shifted, storage, base_id)
    with list_layers.opened(storage) as stored:
        assert stored.record() is None

    reads = reads_of_base_ids(monkeypatch)
    customer_lists.update_for_model(first, storage, buyers1)
    assert len(reads) == 1
    assert_same_lists(storage, full1)
    with list_layers.opened(storage) as stored:  # kept for the next night
        assert stored.record() is not None
    customer_lists.update_for_model(second, storage, buyers2)
    assert len(reads) == 1
    assert_same_lists(storage, full2)
