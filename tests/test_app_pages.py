"""Every page through AppTest, against the live webserver and the model it trained."""

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dagster_project.recommender import load_model
from streamlit_app import tables
from tests.apptest import chart_data, open_page, texts
from tests.servers import free_port, wait_until


def test_overview_shows_the_headline_figures(app_env, trained):
    at = open_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Customers"] == "1,383" and metrics["Products"] == "101" and metrics["Purchases"] == "3,001"
    assert 93 <= float(metrics["Data quality"].removesuffix("%")) <= 98
    model = load_model(app_env.workspace.model_file)
    assert metrics["Hit rate"] == f"{model.card.metrics['new']['svd'].hit_rate:.0%}"
    assert any(c.value == "The pipeline is running." for c in at.caption)
    assert not any("scheduler is not running" in w.value for w in at.warning)
    last = at.dataframe[0].value.set_index("What ran")
    newest = next(r for r in app_env.api.runs(limit=50) if r.job_name == "complete_pipeline_job")
    assert last.loc["Complete pipeline", "Result"] == tables.status_words(newest.status)  # as Dagster says


def test_runs_page_lists_runs_and_charts_durations(app_env, trained):
    at = open_page("runs")
    table = at.dataframe[0].value
    assert trained[:8] in set(table["Run"])
    row = table.set_index("Run").loc[trained[:8]]
    assert row["What ran"] == "Complete pipeline" and row["Started by"] == "tests in the app"
    assert trained in row["link"]
    spec, data = chart_data(at, 0)
    assert spec["encoding"]["y"]["field"] == "seconds"
    assert trained[:8] in set(data["Run"]) and (data["seconds"] > 0).all()
    # steps of the selected run (the newest first)
    at.selectbox[0].set_value(trained).run()
    steps = at.dataframe[1].value
    assert "Train and publish the model" in set(steps["Step"])


def test_data_quality_page(app_env, trained):
    at = open_page("data_quality")
    metrics = {m.label: m.value for m in at.metric}
    report = app_env.api.materializations("validation_report", 1)[0]["metadata"]
    assert metrics["Data quality"] == f"{report['quality_score']:.1f}%"
    _, scores = chart_data(at, 0)
    assert report["quality_score"] in set(scores["quality_score"])
    checks = next(d.value for d in at.dataframe if "Check" in d.value.columns).set_index("Check")
    assert checks.loc["E-mail address valid", "Result"] == "Problems found"
    assert checks.loc["Customer id filled in", "Result"] == "Passed"
    _, counts = chart_data(at, 1)
    counts = counts.set_index(["table", "stage"])["records"]
    assert counts[("transactions", "raw")] == 3001 and counts[("transactions", "prepared")] < 3001
    assert counts[("users", "raw")] == 1383
    _, dropped = chart_data(at, 2)
    assert dropped.set_index("reason").loc["user_known", "rows"] == 30


def list_table(at: AppTest, index: int = 0) -> pd.DataFrame:
    """Every column of a customer's list ([0] new products, [1] buy again), from its "All columns" view."""
    return [d.value for d in at.dataframe if "why" in d.value.columns][index]


def test_recommendations_for_a_known_user(app_env, trained):
    model = load_model(app_env.workspace.model_file)
    user = model.user_ids[0]
    at = open_page("recommendations")
    at.text_input(key="customer_query").set_value(user).run()  # an id opens that customer at once
    assert not at.exception
    recs = list_table(at)
    expected = model.recommend(user, n=10)
    assert recs["product_id"].tolist() == expected["product_id"].tolist()
    assert {"name", "category", "price", "score", "why"} <= set(recs.columns)
    history = next(d.value for d in at.dataframe if "purchases" in d.value.columns and "product_id" in d.value.columns)
    assert set(history["product_id"]) == set(model.purchase_history(user)["product_id"])
    assert at.get("download_button")


def test_serving_keeps_one_blas_thread_also_for_a_library_loaded_later():
    """services._one_blas_thread (run on every model use) brings every BLAS library to one thread, also one loaded
    after the first page (scipy's own, with scikit-learn), which starts with as many threads as cores."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from streamlit_app import services

    def blas() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):  # as a library loaded later starts
        services._one_blas_thread()
        assert blas() == {1}


def test_recommendations_by_name_and_for_unknown_user(app_env, trained):
    model = load_model(app_env.workspace.model_file)
    at = open_page("recommendations")
    name = model.user_profiles["name"].dropna().iloc[0].split()[1]
    at.text_input(key="customer_query").set_value(name).run()
    assert any("customers match" in c.value for c in at.caption)
    at.text_input(key="customer_query").set_value("no-such-customer").run()
    assert "No customer with id, name or e-mail 'no-such-customer'" in at.warning[0].value
    best = next(m.value for m in at.markdown if m.value.startswith("| # | Product | Why |"))
    assert all(f"**{n}**" in best for n in model.popular(10)["name"])


def test_refresh_submits_and_follows_the_run(app_env, trained):
    at = open_page("refresh")
    at.radio[0].set_value("ingestion_job").run()
    at.button[0].click().run()
    run_id = at.session_state["tracked_run"]
    assert run_id and run_id in texts(at)  # the link to the run in the Dagster UI

    def finished():
        at.run()
        return "Done in" in texts(at)

    wait_until(finished, 180, "the refresh page showing success", interval=1)
    assert app_env.api.run(run_id).status == "SUCCESS"


def test_second_click_follows_the_run_under_way(app_env, trained):
    first = app_env.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "app"})
    at = open_page("refresh")
    at.button[0].click().run()
    try:
        assert at.session_state["tracked_run"] == first
        assert "already under way" in texts(at)
        assert len(app_env.api.active_runs()) <= 1
    finally:
        from tests.servers import wait_for_run

        assert wait_for_run(app_env.api, first) == "SUCCESS"


def test_webserver_down_shows_a_banner_and_recommendations_still_work(app_env, trained, monkeypatch):
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    for page in (None, "runs", "data_quality", "refresh"):
        at = open_page(page)
        if page != "refresh":
            assert [e.value for e in at.error if "pipeline service is not answering" in e.value], page
            assert any("run_pipeline.sh ui" in m.value for m in at.markdown), page  # the engineer's detail
    assert at.button(key="start_refresh").disabled  # nothing to click until the webserver is back
    assert len([e for e in at.error if "pipeline service is not answering" in e.value]) == 1
    at = open_page("recommendations")
    at.text_input(key="customer_query").set_value(load_model(app_env.workspace.model_file).user_ids[0]).run()
    assert len(list_table(at)) == 10


def test_missing_model_is_explained(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMART_MODELS_DIR", str(tmp_path))
    at = open_page("recommendations")
    assert "No model at" in at.warning[0].value and "complete pipeline" in at.warning[0].value
    assert at.get("page_link")


def test_invalid_knobs_never_reach_dagster():
    from streamlit_app.run_requests import RefreshOptions, build_run_config

    with pytest.raises(ValueError, match="between 0 and 100"):
        build_run_config("complete_pipeline_job", RefreshOptions(min_quality_score=120))
    with pytest.raises(ValueError, match="Unknown job"):
        build_run_config("rm_rf_job", RefreshOptions())
    config = build_run_config("complete_pipeline_job", RefreshOptions(70, 0.25, False))
    assert config["ops"]["validation_report"]["config"]["min_quality_score"] == 70.0
    assert build_run_config("ingestion_job", RefreshOptions()) == {}


def test_corrupt_model_falls_back_and_versions_roll_back(app_env, trained, tmp_path, monkeypatch):
    import shutil

    from dagster_project import model_store

    models = tmp_path / "models"
    shutil.copytree(app_env.workspace.models, models)
    monkeypatch.setenv("RECOMART_MODELS_DIR", str(models))
    kept = model_store.list_versions(models)
    good = load_model(kept[0])
    (models / "collaborative_filtering.pkl").write_bytes(b"not a model")
    at = open_page("recommendations")
    warning = at.warning[0].value
    assert "cannot be used" in warning and good.card.version in warning
    at.text_input(key="customer_query").set_value(good.user_ids[0]).run()
    assert len(list_table(at)) == 10

    # Roll back on the Model history page: choose the kept version, confirm; the served file loads again.
    at.switch_page("app_pages/model_history.py").run()
    versions = at.dataframe[0].value
    assert good.card.version in set(versions["version"])
    at.selectbox(key="version_choice").set_value(good.card.version).run()
    at.button(key="serve_version").click().run()
    assert load_model(models / "collaborative_filtering.pkl").card.version == good.card.version


@pytest.mark.webserver
def test_overview_warns_when_the_daemon_is_down(tmp_path, sample_source, monkeypatch):
    from tests.servers import DagsterServer
    from tests.workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", sample_source)
    server = DagsterServer(tmp_path / "home", ws.env())
    try:
        server.start_webserver()  # no daemon
        monkeypatch.setenv("DAGSTER_PORT", str(server.port))
        for key, value in ws.env().items():
            monkeypatch.setenv(key, value)
        at = open_page()
        assert any("scheduler is not running" in w.value for w in at.warning)
    finally:
        server.stop()
