"""The Recommendations and Model history pages through AppTest: the customer list, why each product, the
downloads, every customer's lists, kept versions and a roll-back that asks first."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dagster_project import customer_lists, model_store
from dagster_project.recommender import load_model
from streamlit_app.customer_tables import LIST_LIMIT
from tests.apptest import chart_data, open_page, texts
from tests.attacks import USERS
from tests.servers import BIN, free_port
from tests.workspace import APP, ROOT, Workspace, cli_env, make_workspace


def customer_list(at: AppTest):
    """The customer list (its key changes with the search, so a new search starts with nothing picked)."""
    (found,) = [d for d in at.dataframe if (d.key or "").startswith("customer_list_")]
    return found


def pick_row(at: AppTest, row: int) -> AppTest:
    """What a click on a row's box sends: the list's selection."""
    at.session_state[customer_list(at).key] = {"selection": {"rows": [row], "columns": []}}
    return at.run()


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """Every file the page offers for download, by file name: the bytes, or the callable made on click."""
    offered: dict[str, object] = {}
    real_add, real_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def add(self, data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        offered[file_name] = data
        return real_add(self, data, mimetype, coordinates, file_name, is_for_static_download)

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        offered[file_name] = data_callable
        return real_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return offered


def test_customer_list_opens_a_customer_with_reasons_and_downloads(app_env, trained, downloads):
    model = load_model(app_env.workspace.model_file)
    customers = model.customers()
    at = open_page("recommendations")
    listed = customer_list(at).value
    assert len(listed) == min(LIST_LIMIT, len(customers))
    assert f"Showing {len(listed):,} of {len(customers):,} customers" in texts(at)
    assert not listed.isna().any().any() and "None" not in listed.astype(str).to_numpy()
    assert {"user_id", "name", "email", "country", "purchases", "spend", "last_purchase"} <= set(listed.columns)
    assert listed["spend"].is_monotonic_decreasing  # "Most spent" first by default
    assert "Pick a customer" in texts(at)

    pick_row(at, 2)
    chosen = listed.iloc[2]
    assert at.subheader[0].value == f"{chosen['name']} ({chosen['user_id']})"
    new_list = next(m.value for m in at.markdown if m.value.startswith("| # | Product | Why |"))
    expected = model.recommend(chosen["user_id"], n=10)
    assert "because you bought" in new_list
    for name, explanation in zip(expected["name"], expected["explanation"]):
        assert f"**{name}**" in new_list and explanation in new_list
    assert "0.00" not in new_list  # the model's score is not a headline

    csv = pd.read_csv(io.BytesIO(downloads[f"recommendations_{chosen['user_id']}_new.csv"]), dtype=str)
    assert list(csv.columns[:3]) == ["user_id", "name", "email"]
    assert set(csv["user_id"]) == {chosen["user_id"]} and set(csv["email"]) == {chosen["email"]}
    assert csv["product_id"].tolist() == expected["product_id"].tolist()
    assert csv["explanation"].tolist() == expected["explanation"].tolist()

    # Search by e-mail: one customer, opened at once.
    other = customers[customers["purchases"] > 0].iloc[5]
    at.text_input(key="customer_query").set_value(other["email"].upper()).run()
    assert f"1 customer matches '{other['email'].upper()}'" in texts(at).replace("\\", "")
    assert at.subheader[0].value == f"{other['name']} ({other['user_id']})"

    # More matches than the list shows: said honestly.
    at.text_input(key="customer_query").set_value("example.com").run()
    found = model.search_users("example.com", 10**6)[1]
    assert found > LIST_LIMIT
    assert f"{LIST_LIMIT} of {found:,} customers match" in texts(at) and "refine your search" in texts(at)

    # A name shared by several customers: the list tells them apart by e-mail, country and last purchase.
    name = customers["name"][customers["name"].duplicated()].iloc[0]
    at.text_input(key="customer_query").set_value(name).run()
    same = customer_list(at).value
    assert len(same) >= 2 and set(same["name"]) == {name} and same["email"].is_unique

    at.text_input(key="customer_query").set_value("no-such-customer").run()
    assert "No customer with id, name or e-mail 'no-such-customer'" in at.warning[0].value
    assert model.popular(1)["name"].iloc[0] in texts(at)


def test_every_customers_lists_summarised_and_downloadable(app_env, trained, downloads):
    storage = app_env.workspace.storage
    lists = customer_lists.read(storage)
    summary = customer_lists.summary(storage)
    at = open_page("recommendations")
    assert f"Every one of the {summary['customers']:,} customers has a list" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best-sellers instead"] == f"{summary['fallback_share']:.0%}"
    _, top = chart_data(at)
    assert top["name"].tolist() == summary["top_products"]["name"].tolist()

    csv = pd.read_csv(io.BytesIO(downloads["recommendations_all_customers.csv"]()), dtype={"user_id": str})
    assert len(csv) == len(lists) and {"user_id", "customer_name", "email", "explanation"} <= set(csv.columns)
    parquet = pd.read_parquet(io.BytesIO(downloads["recommendations_all_customers.parquet"]()))
    assert len(parquet) == len(lists) and set(parquet["user_id"]) == set(lists["user_id"])


def test_every_customers_lists_say_when_another_model_made_them(app_env, trained, tmp_path, monkeypatch):
    """After a roll-back (here: another version served), the stored lists are the other model's until the next
    refresh: the summary says so; with the lists' own model served it does not."""
    at = open_page("recommendations")
    assert not [w for w in at.warning if "another model" in w.value]
    models = tmp_path / "models"
    shutil.copytree(app_env.workspace.models, models)
    monkeypatch.setenv("RECOMART_MODELS_DIR", str(models))
    made_by = customer_lists.stored_lineage(app_env.workspace.storage)["version"]
    model_store.publish(load_model(models / model_store.MODEL_FILENAME), models, "20200101T000000Z-0000beef")
    at = open_page("recommendations")
    [warning] = [w.value for w in at.warning if "another model" in w.value]
    assert "01 Jan 2020" in warning and made_by[-8:] in warning and "next refresh" in warning


def test_damaged_lists_are_explained(app_env, trained, tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    shutil.copytree(customer_lists.folder_path(app_env.workspace.storage), customer_lists.folder_path(storage))
    monkeypatch.setenv("RECOMART_STORAGE_DIR", str(storage))
    base = customer_lists.dataset_path(storage)
    base.write_bytes(base.read_bytes()[:-100])  # its footer cut off
    at = open_page("recommendations")
    [error] = [e.value for e in at.error if "cannot be read" in e.value]
    assert "refresh of everything" in error and "Customers tab still works" in error
    assert not at.exception


def test_lists_missing_are_explained(app_env, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMART_STORAGE_DIR", str(tmp_path))
    at = open_page("recommendations")
    assert any("have not been made yet" in i.value and "complete refresh" in i.value for i in at.info)


def test_model_history_charts_the_training_runs(app_env, trained):
    at = open_page("model_history")
    runs = app_env.api.materializations("collaborative_filtering_model", 50)
    charts = [chart_data(at, i) for i in range(len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")))]
    spec, data = next((spec, data) for spec, data in charts if "run_id" in data)  # the training runs' chart
    ours = data[data["run_id"] == trained].set_index("line")["ndcg"]
    meta = next(m for m in runs if m["run_id"] == trained)["metadata"]
    assert ours["Model: new products"] == pytest.approx(meta["ndcg_at_10"])
    assert ours["Best-sellers"] == pytest.approx(meta["popularity_ndcg_at_10"])
    assert spec["encoding"]["y"]["field"] == "ndcg"
    table = at.dataframe[1].value
    assert trained[:8] in set(table["run"]) and not table.isna().any().any()


# --- kept versions and roll-back, from files only -------------------------------------------------------


def train(ws: Workspace, tmp_path: Path, name: str) -> None:
    env = {**cli_env(ws, tmp_path / name), "RECOMART_AUTOMATION": "off"}
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions", "-j", "complete_pipeline_job"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, sample_source) -> Workspace:
    """Two kept versions: an older one trained before the second users file arrived, then the served one."""
    root = tmp_path_factory.mktemp("two-versions")
    ws = make_workspace(root / "ws", sample_source)
    later = ws.data / "users2.csv"
    shutil.move(later, root / "users2.csv")
    (root / "first").mkdir()
    train(ws, root, "first")
    shutil.move(root / "users2.csv", later)
    (root / "second").mkdir()
    train(ws, root, "second")
    assert len(model_store.list_versions(ws.models)) == 2
    return ws


@pytest.fixture
def history_env(two_versions, tmp_path, monkeypatch) -> Workspace:
    """A copy of the two versions (a roll-back changes the files), and no Dagster webserver."""
    ws = Workspace(tmp_path, two_versions.data, two_versions.storage, tmp_path / "models")
    shutil.copytree(two_versions.models, ws.models)
    for key, value in ws.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    return ws


def test_model_history_and_a_roll_back_that_asks_first(history_env):
    newer, older = model_store.list_versions(history_env.models)
    newer_model, older_model = load_model(newer), load_model(older)
    lost = len(newer_model.user_ids.difference(older_model.user_ids))
    assert lost > 0

    at = open_page("model_history")
    assert "Serving the newest model" in at.success[0].value
    versions = at.dataframe[0].value.set_index("version")
    assert set(versions.index) == {p.stem.removeprefix("collaborative_filtering-") for p in (newer, older)}
    assert versions.loc[newer_model.card.version, "serving"] == "serving now"
    assert versions.loc[older_model.card.version, "customers"] == f"{older_model.card.users:,}"
    assert "None" not in versions.astype(str).to_numpy()
    assert "customers compared, the top-10 changed" in texts(at)
    assert any("cannot be reached" in i.value and "kept model files" in i.value for i in at.info)  # Dagster down
    with pytest.raises(KeyError):
        at.button(key="serve_version")  # nothing switches before a version is chosen and confirmed

    at.selectbox(key="version_choice").set_value(older_model.card.version).run()
    compare = next(m.value for m in at.markdown if m.value.startswith("|  | served now"))
    assert f"| customers | {newer_model.card.users:,} | {older_model.card.users:,} |" in compare
    assert any(f"does not know {lost:,} customers" in w.value for w in at.warning)
    assert load_model(history_env.model_file).card.version == newer_model.card.version  # not yet

    at.button(key="serve_version").click().run()
    assert load_model(history_env.model_file).card.version == older_model.card.version
    assert any(w.value.startswith("**Rolled back.**") for w in at.warning)


def test_viewer_compares_versions_but_cannot_confirm(history_env, monkeypatch):
    older = model_store.list_versions(history_env.models)[1]
    before = history_env.model_file.read_bytes()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["users"] = USERS
    at.run()
    at.text_input(key="sign_in_name").set_value("vic")
    at.text_input(key="sign_in_password").set_value("view-secret")
    at.button[0].click().run()
    at.switch_page("app_pages/model_history.py").run()
    at.selectbox(key="version_choice").set_value(model_store.version_name(older)).run()
    assert any("does not know" in w.value for w in at.warning)  # the comparison is there to read
    button = at.button(key="serve_version")
    assert button.disabled
    button.proto.disabled = False  # a forged click on the disabled button
    button.click().run()
    assert history_env.model_file.read_bytes() == before
