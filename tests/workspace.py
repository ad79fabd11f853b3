"""What the tests (and the benchmarks) share: the project's paths, a workspace of temporary folders,
a live Dagster server's handles, and the small frames several rule tests start from.

Fixtures live in tests/conftest.py; plain helpers live here, so no test module imports another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from dagster_project import validation

if TYPE_CHECKING:
    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.servers import DagsterServer

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app" / "app.py"
PAGES = ROOT / "streamlit_app" / "app_pages"


@dataclass
class Workspace:
    """Data, storage and models folders of one test, pointed at by env vars or run config."""

    root: Path
    data: Path
    storage: Path
    models: Path

    @property
    def model_file(self) -> Path:
        return self.models / "collaborative_filtering.pkl"

    def env(self) -> dict[str, str]:
        return {
            "RECOMART_DATA_DIR": str(self.data),
            "RECOMART_STORAGE_DIR": str(self.storage),
            "RECOMART_MODELS_DIR": str(self.models),
        }

    def run_config(self) -> dict:
        return {
            "resources": {
                "paths": {
                    "config": {
                        "data_dir": str(self.data),
                        "storage_dir": str(self.storage),
                        "models_dir": str(self.models),
                    }
                }
            }
        }


def make_workspace(root: Path, source: Path) -> Workspace:
    ws = Workspace(root, root / "data", root / "storage", root / "models")
    shutil.copytree(source, ws.data)
    ws.storage.mkdir()
    ws.models.mkdir()
    return ws


@dataclass
class LiveDagster:
    """A running webserver and daemon, the workspace their runs use, and the app's client for them."""

    server: DagsterServer
    workspace: Workspace
    connection: Connection
    api: DagsterAPI
    storage: str = "sqlite"

    def app_env(self) -> dict[str, str]:
        """What an app process needs to reach this webserver and read this workspace's folders."""
        return {"DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(self.server.port), **self.workspace.env()}


def folder_bytes(folder: Path) -> dict[str, str]:
    """Every file under a folder (kept sets included) with its content hash: "byte for byte unchanged"."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def exports(folder: Path) -> dict[str, str]:
    """The data folder's own files (not the sets an upload replaced) with their content hash."""
    from dagster_project.uploads import REPLACED_FOLDER

    return {k: v for k, v in folder_bytes(folder).items() if not k.startswith(REPLACED_FOLDER)}


def cli_env(workspace: Workspace, tmp_path: Path) -> dict[str, str]:
    """Environment for a `dagster` CLI run over a workspace, with its own Dagster home."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, **workspace.env(), "DAGSTER_HOME": str(home)}


def small_frames(**overrides: pd.DataFrame) -> validation.Frames:
    """A few users, products and transactions with one defect of each kind the rules look for."""
    users = pd.DataFrame(
        {"user_id": ["1", "2", "2", "3"], "email": ["a@x.io", "bad", "c@x.io", None], "age": ["30", "500", "41", "x"]},
        dtype="string",
    )
    products = pd.DataFrame(
        {"product_id": ["A", "B"], "name": ["Apple", "Bean"], "price": ["1.5", "-2"]}, dtype="string"
    )
    tx = pd.DataFrame(
        {
            "user_id": ["1", "9", "2", "3", "1"],
            "product_id": ["A", "A", "Z", "B", "A"],
            "quantity": ["1", "2", "0", "1", "1"],
            "timestamp": ["2026-01-01 10:00", "2026-01-02", "soon", "2026-02-01T00:00:00+02:00", "2026-01-01 10:00"],
        },
        dtype="string",
    )
    base = {"users": users, "products": products, "transactions": tx}
    base.update(overrides)
    return validation.Frames(**base)


def prepared_tables(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Prepared transactions, products and users of a data folder, by the pipeline's own reading and
    preparation (no Dagster)."""
    from dagster_project import ingest, preparation

    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    users, _ = preparation.prepare_users(frames)
    return transactions, products, users


def history_and_day(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """The prepared tables of a data folder and a cut: the first 90% of the purchases is the history, the rest
    the new day, starting strictly after the history ends (a day's file comes after the history)."""
    transactions, products, users = prepared_tables(data)
    cut = int(len(transactions) * 0.9)
    while cut < len(transactions) and transactions["timestamp"].iloc[cut] == transactions["timestamp"].iloc[cut - 1]:
        cut += 1
    return transactions, products, users, cut


def train_on(data: Path, params=None, share: float = 1.0):
    """A model trained on a data folder through the pipeline's own reading and preparation (no Dagster).

    `params` fixes the settings (quick); `share` < 1 trains on that earliest share of the transactions.
    """
    from dagster_project.training import train_model

    transactions, products, users = prepared_tables(data)
    transactions = transactions.iloc[: int(len(transactions) * share)]
    return train_model(transactions, products, users, fixed=params)


def sorted_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored lists in one order (customer, list, rank): a full write's and an update's rows compared row by row
    (after an update the changed customers' rows come after the others')."""
    return frame.sort_values(["user_id", "list", "rank"], kind="stable").reset_index(drop=True)


def assert_same_lists(storage: Path, full: Path) -> None:
    """The lists stored under `storage` (perhaps a base and a layer) hold what a full write stored under `full`:
    every value of every row, the catalogue and lineage, the summary, the CSV and the Parquet download."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dagster_project import customer_lists, list_update
    from dagster_project.list_building import LINEAGE_KEY

    frame, want = customer_lists.read(storage), customer_lists.read(full)
    pd.testing.assert_frame_equal(sorted_lists(frame), sorted_lists(want))
    assert frame.attrs["catalogue"] == want.attrs["catalogue"]
    assert customer_lists.stored_lineage(storage) == list_update.stored_lineage(customer_lists.dataset_path(full))
    got_summary, want_summary = customer_lists.summary(storage), customer_lists.summary(full)
    assert got_summary.keys() == want_summary.keys()
    for key, value in got_summary.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, want_summary[key], obj=key)
        else:
            assert value == want_summary[key], key
    assert customer_lists.to_csv_bytes(sorted_lists(frame)) == customer_lists.to_csv_bytes(sorted_lists(want))
    download = pq.read_table(io.BytesIO(customer_lists.parquet_bytes(storage)))
    stored = pq.read_table(customer_lists.dataset_path(full))
    order = [("user_id", "ascending"), ("list", "ascending"), ("rank", "ascending")]
    assert download.sort_by(order).equals(stored.sort_by(order))
    keys = (customer_lists.CATALOGUE_KEY, LINEAGE_KEY)
    assert {k: download.schema.metadata[k] for k in keys} == {k: stored.schema.metadata[k] for k in keys}
    assert isinstance(download, pa.Table) and download.num_rows == got_summary["rows"] == len(frame)
    preview = customer_lists.preview(storage)
    assert len(preview) == 5 and len(preview.drop(columns="because").merge(want.drop(columns="because"))) == 5
