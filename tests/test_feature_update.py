"""Updating the stored feature tables with a day of new purchases (feature_update.py): the tables stored after
an update are the tables a full count over the whole history stores, for customers and products old and new,
pairs bought again and pairs new; and three tables that do not say they count the same files are not updated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dagster_project import feature_update, features, interaction_file
from dagster_project.fileio import atomic_path, write_parquet
from tests.workspace import history_and_day

COVERS = {"covers": {"files": {"a.csv": "1"}, "reference": "r", "last_purchase": None}}


def store(folder, users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame, group_rows=None) -> dict:
    """The three tables written as the pipeline writes them (`group_rows`: pairs per Parquet row group), read back
    as every reader reads them."""
    paths = {name: folder / f"{name}.parquet" for name in ("users", "items", "interactions")}
    for name, table in zip(paths, (users, items), strict=False):
        write_parquet(table, paths[name])
    with atomic_path(paths["interactions"]) as tmp:
        interaction_file.write(interactions, tmp, interactions.attrs, group_rows)
    return {name: pd.read_parquet(path) for name, path in paths.items()}


def update_stored(folder, old: pd.DataFrame, new: pd.DataFrame, users, products, group_rows=None) -> dict:
    """What the nightly refresh does: count the history once, store it, then update the stored tables."""
    store(folder, *features.build(old, users, products), group_rows=group_rows)
    target = folder / "updated.parquet"
    updated = feature_update.update(
        pd.read_parquet(folder / "users.parquet"), folder / "interactions.parquet", target, new, products, COVERS
    )
    assert layout(target) == LAYOUT  # written as a full count writes it
    got = store(folder / "updated", updated.users, updated.items, pd.read_parquet(target))
    assert pd.read_parquet(target).attrs == COVERS  # the table says what it counts
    pd.testing.assert_frame_equal(updated.preview, got["interactions"].head(5), check_dtype=False)  # shown as text
    assert updated.pairs == len(got["interactions"])
    return {"updated": updated, **got}


# The interaction table's layout (interaction_file.py): per column, codec, dictionary pages, delta encoding, min/max
LAYOUT = {
    "user_id": ("LZ4", False, False, False),
    "product_id": ("LZ4", True, False, False),
    "purchases": ("LZ4", False, True, True),
    "quantity": ("LZ4", False, True, True),
    "spend": ("LZ4", True, False, True),
    "first_purchase": ("LZ4", False, True, True),
    "last_purchase": ("LZ4", False, True, True),
    "confidence": ("LZ4", True, False, True),
}


def layout(path) -> dict:
    """Per column of the file's first row group: codec, dictionary pages, delta encoding, min/max written."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    found = {}
    for i in range(group.num_columns):
        column = group.column(i)
        stats = column.statistics is not None and column.statistics.has_min_max
        found[column.path_in_schema] = (
            column.compression,
            column.dictionary_page_offset is not None,
            "DELTA_BINARY_PACKED" in column.encodings,
            stats,
        )
    return found


def assert_stored_equal(got: dict, want: dict, exact: bool) -> None:
    for name in ("users", "items", "interactions"):
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=exact, obj=name)


@pytest.fixture(scope="module")
def history(sample_source):
    return history_and_day(sample_source)


@pytest.mark.parametrize("group_rows", [None, 997])  # one Parquet row group, or many (read one at a time)
def test_an_updated_store_equals_a_full_count_of_the_sample(history, tmp_path, group_rows):
    transactions, products, users, cut = history
    old, new = transactions.iloc[:cut], transactions.iloc[cut:].reset_index(drop=True)
    got = update_stored(tmp_path / "old", old, new, users, products, group_rows)
    whole = store(tmp_path / "whole", *features.build(transactions, users, products))
    # money sums of pairs bought again are added in another order (old sum + new): equal to rounding
    assert_stored_equal(got, whole, exact=False)
    # everything else, and every figure derived from the updated pairs, to the last bit
    stored = pd.read_parquet(tmp_path / "old/interactions.parquet")
    derived = store(tmp_path / "derived", *features.extend(stored.copy(), new, users, products))
    assert_stored_equal(got, derived, exact=True)
    updated = got["updated"]
    assert updated.new_pairs > 0 and 0 < updated.buyers < len(users)
    bought_again = got["interactions"]["purchases"].to_numpy()[: len(stored)] > stored["purchases"].to_numpy()
    assert bought_again.any()
    if group_rows:
        assert pq.ParquetFile(tmp_path / "old/updated.parquet").num_row_groups > 1


def test_the_interaction_layout_reads_as_pandas_writes_it(history, tmp_path):
    """The layout changes how the values are stored, not the table any reader gets: the same frame, types, attrs."""
    transactions, products, users, _ = history
    interactions = features.build(transactions, users, products)[2]
    interactions.attrs = COVERS
    interactions.to_parquet(tmp_path / "pandas.parquet", index=False)
    interaction_file.write(interactions, tmp_path / "laid.parquet", COVERS, rows_per_group=997)
    assert layout(tmp_path / "laid.parquet") == LAYOUT
    assert pq.ParquetFile(tmp_path / "laid.parquet").num_row_groups > 1
    got, want = pd.read_parquet(tmp_path / "laid.parquet"), pd.read_parquet(tmp_path / "pandas.parquet")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs == COVERS
    assert pq.read_table(tmp_path / "laid.parquet").equals(pq.read_table(tmp_path / "pandas.parquet"))
    assert pq.read_schema(tmp_path / "laid.parquet").equals(pq.read_schema(tmp_path / "pandas.parquet"))


def test_a_day_without_purchases_keeps_the_tables(history, tmp_path):
    transactions, products, users, cut = history
    got = update_stored(tmp_path, transactions, transactions.iloc[:0], users, products, group_rows=997)
    whole = store(tmp_path / "whole", *features.build(transactions, users, products))
    assert_stored_equal(got, whole, exact=True)
    assert got["updated"].new_pairs == 0 and got["updated"].buyers == 0


def purchases(rows: list[tuple[str, str, int, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.array([r[0] for r in rows], dtype="string"),
            "product_id": pd.array([r[1] for r in rows], dtype="string"),
            "quantity": [r[2] for r in rows],
            "amount": [r[3] for r in rows],
            "timestamp": pd.to_datetime([r[4] for r in rows], utc=True).as_unit("us"),
        }
    )


PRODUCTS = pd.DataFrame(
    {
        "product_id": pd.array(["a", "b", "c", "d"], dtype="string"),
        "name": ["A", "B", "C", "D"],
        "category": ["x", "y", "y", "z"],
        "brand": ["k", "k", "k", "k"],
        "price": [10.0, 5.0, 1.0, 2.0],
    }
)
USERS = pd.DataFrame(
    {
        "user_id": pd.array(["u1", "u2", "u3", "u4"], dtype="string"),
        "age": [30, 40, 50, 60],
        "gender": ["F", "M", "Unknown", "F"],
        "country": ["US", "DE", "FR", "US"],
        "gender_code": np.array([0, 1, 2, 0], dtype="int32"),
        "country_code": np.array([0, 1, 2, 0], dtype="int32"),
        "age_scaled": [0.0, 0.3, 0.6, 1.0],
    }
)


def test_every_kind_of_change_a_day_brings(tmp_path):
    old = purchases(
        [
            ("u1", "a", 1, 10.0, "2026-01-01"),
            ("u1", "b", 2, 10.0, "2026-01-02"),  # u1's favourite: "y" (b bought twice)
            ("u1", "b", 1, 5.0, "2026-01-02"),
            ("u2", "a", 1, 10.0, "2026-01-03"),
            ("u2", "b", 1, 5.0, "2026-01-04"),
            ("u3", "b", 1, 5.0, "2026-01-05"),  # u3 buys nothing new: only their recency moves
            ("zz", "a", 1, 10.0, "2026-01-05"),  # a customer missing from the customers file
        ]
    )
    new = purchases(
        [
            ("u1", "a", 3, 30.0, "2026-01-10"),  # a pair bought again: u1 now buys "a" more (favourite moves)
            ("u1", "a", 1, 10.0, "2026-01-10"),
            ("u2", "c", 1, 1.0, "2026-01-11"),  # a new pair of a known customer; "c" sold for the first time
            ("u4", "d", 2, 4.0, "2026-01-12"),  # a customer's first purchase; "d" sold for the first time
            ("u4", "a", 1, 10.0, "2026-01-12"),
            ("u9", "q", 1, 0.5, "2026-01-12"),  # a customer and a product outside the files: pairs, no rows
        ]
    )
    got = update_stored(tmp_path / "old", old, new, USERS, PRODUCTS)
    updated = got["updated"]
    whole = store(tmp_path / "whole", *features.build(pd.concat([old, new], ignore_index=True), USERS, PRODUCTS))
    assert_stored_equal(got, whole, exact=True)  # sums of numbers exact in binary: no rounding to hide behind
    users = got["users"].set_index("user_id")
    assert users.loc["u1", "favourite_category"] == "x" and users.loc["u1", "transactions"] == 5
    assert users.loc["u3", "recency_days"] == 7.0 and users.loc["u4", "products_bought"] == 2
    items = got["items"].set_index("product_id")
    assert items.loc["c", "buyers"] == 1 and items.loc["d", "purchases"] == 1 and items.loc["a", "buyers"] == 4
    assert "zz" not in users.index and "u9" in set(got["interactions"]["user_id"])
    assert updated.new_pairs == 4 and updated.buyers == 3  # u9 has pairs but no customer row
    assert updated.new_customers == 2  # u4 and u9 had no pair before


def test_tables_that_count_different_files_are_not_updated(tmp_path):
    frame = pd.DataFrame({"x": [1]})
    paths = [tmp_path / f"{name}.parquet" for name in ("users", "items", "interactions")]
    for path in paths:
        write_parquet(frame.copy(), path)
    assert feature_update.agreed_covers(paths) == (None, "the stored feature tables do not say which files they count")
    for path in paths:
        table = frame.copy()
        table.attrs = COVERS
        write_parquet(table, path)
    assert feature_update.agreed_covers(paths) == (COVERS["covers"], "")
    other = frame.copy()
    other.attrs = {"covers": {**COVERS["covers"], "files": {"a.csv": "2"}}}
    write_parquet(other, paths[0])
    found, why = feature_update.agreed_covers(paths)
    assert found is None and why == "the stored feature tables do not count the same files"
    paths[1].unlink()
    assert feature_update.agreed_covers(paths) == (None, "the stored feature tables are not all there")
    assert json.loads(pq.read_schema(paths[2]).metadata[b"PANDAS_ATTRS"]) == COVERS


@pytest.mark.webserver
def test_tables_from_different_counts_are_counted_again(tmp_path, sample_source, monkeypatch):
    """On a real webserver and daemon: the nightly refresh updates the stored tables, except when they do not
    say they count the same files (here the item table was put back from an older count): then it counts the
    whole history, and the next night updates again."""
    from dagster_project import transaction_store
    from dagster_project.fileio import write_parquet as store_table
    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.servers import dagster_server
    from tests.test_incremental_refresh import refresh_from_page
    from tests.workspace import LiveDagster, make_workspace

    ws = make_workspace(tmp_path, sample_source)
    lines = pd.read_csv(ws.data / "transactions.csv", dtype=str, keep_default_na=False)
    folder = ws.storage / "features"

    def new_day(day: str) -> None:
        fresh = lines.iloc[:8].assign(transaction_id=[f"{day}-{i}" for i in range(8)], timestamp=f"{day} 12:00:00")
        fresh.to_csv(ws.data / f"transactions_{day}.csv", index=False)

    def refreshed(run_id: str) -> tuple[str, dict]:
        [meta] = [m["metadata"] for m in live.api.materializations("interaction_matrix") if m["run_id"] == run_id]
        return meta["refresh"], {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}

    def assert_full_count(got: dict) -> None:
        prepared = transaction_store.load_prepared(ws.storage, live.api.partition_keys())
        users = pd.read_parquet(ws.storage / "prepared" / "users.parquet")
        products = pd.read_parquet(ws.storage / "prepared" / "products.parquet")
        whole = store(tmp_path / "whole", *features.build(prepared, users, products))
        renamed = {"users": got["user_features"], "items": got["item_features"], "interactions": got["interactions"]}
        assert_stored_equal(renamed, whole, exact=False)

    with dagster_server(tmp_path / "dagster_home", ws.env()) as server:
        live = LiveDagster(server, ws, Connection(port=server.port), DagsterAPI(Connection(port=server.port)))
        for key, value in live.app_env().items():
            monkeypatch.setenv(key, value)
        refresh_from_page(live, None)  # everything: the tables are counted and say what they count
        older = pd.read_parquet(folder / "item_features.parquet")

        new_day("2026-11-01")
        kind, got = refreshed(refresh_from_page(live, None))
        assert kind == "update"
        assert_full_count(got)

        older.attrs = {}  # the item table of the earlier count put back: the three tables disagree
        store_table(older, folder / "item_features.parquet")
        new_day("2026-11-02")
        kind, got = refreshed(refresh_from_page(live, None))
        assert kind == "count"  # the whole history, not an update on mismatched tables
        assert_full_count(got)
        assert len({json.dumps(t.attrs["covers"], sort_keys=True) for t in got.values()}) == 1

        new_day("2026-11-03")
        kind, got = refreshed(refresh_from_page(live, None))
        assert kind == "update"  # and the night after, an update again
        assert_full_count(got)
