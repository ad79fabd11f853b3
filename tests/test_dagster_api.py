"""The connection module against a real webserver and daemon: submit, follow, read runs, metadata, checks."""

import socket

import pytest

from dagster_project.recommender import load_model
from streamlit_app.dagster_api import Connection, DagsterAPI, DagsterRequestError, DagsterUnavailable
from tests.servers import free_port, wait_for_run


def test_server_info_and_instance(live):
    assert "dagster_webserver_version" in live.api.server_info()
    info = live.api.instance_info()
    assert info["instance"]["runQueueConfig"]["maxConcurrentRuns"] == 1


def test_ingestion_job_runs_to_success(live):
    run_id = live.api.submit("ingestion_job", tags={"recomart/launched_by": "app"})
    assert wait_for_run(live.api, run_id) == "SUCCESS"
    run = live.api.run(run_id)
    assert run.job_name == "ingestion_job" and run.duration > 0
    assert run.launched_by.startswith("RecoMart app")
    assert {s.key for s in run.steps} == {"raw_data", "raw_transactions"}


def test_complete_pipeline_and_what_it_left(live, trained):
    run = live.api.run(trained)
    assert run.status == "SUCCESS"
    steps = {s.key: s for s in run.steps}
    assert {"raw_data", "validation_report", "prepared_data", "feature_tables", "collaborative_filtering_model"} <= set(
        steps
    )
    assert all(s.end_time >= s.start_time for s in steps.values())
    assert live.workspace.model_file.exists()

    latest = live.api.latest_materializations(
        ["raw_users", "validation_report", "prepared_transactions", "collaborative_filtering_model"]
    )
    users = latest["raw_users"]
    assert users["run_id"] in {trained} | {r.run_id for r in live.api.runs()}
    assert users["metadata"]["records"] == 1383
    report = latest["validation_report"]
    assert 93 <= report["metadata"]["quality_score"] <= 98
    dropped = latest["prepared_transactions"]["metadata"]["dropped_by_reason"]
    assert dropped["user_known"] == 30
    model = latest["collaborative_filtering_model"]["metadata"]
    assert model["ndcg_at_10"] > model["popularity_ndcg_at_10"]


def test_runs_list_with_times(live, trained):
    runs = live.api.runs(limit=500)  # other tests' refreshes on this instance come after `trained`
    mine = next(r for r in runs if r.run_id == trained)
    assert mine.job_name == "complete_pipeline_job" and mine.start_time < mine.end_time
    complete = live.api.runs(job_name="complete_pipeline_job")
    assert trained in {r.run_id for r in complete} and {r.job_name for r in complete} == {"complete_pipeline_job"}
    assert live.api.active_runs() == []


def test_check_results(live, trained):
    checks = {(c["asset"], c["check"]): c for c in live.api.check_results()}
    assert checks[("raw_users", "email_valid")]["passed"] is False
    assert checks[("raw_users", "email_valid")]["failing_rows"] > 0
    assert checks[("raw_users", "user_id_present")]["passed"] is True
    gate = checks[("validation_report", "quality_gate")]
    assert gate["passed"] is True and gate["blocking"] is True


def test_unknown_job_is_refused_before_sending(live):
    with pytest.raises(DagsterRequestError, match="Unknown job"):
        live.api.submit("drop_everything_job")


def test_bad_run_config_is_refused_with_dagster_message(live):
    with pytest.raises(DagsterRequestError, match="Dagster refused the run"):
        live.api.submit("complete_pipeline_job", run_config={"ops": {"no_such_op": {}}})


def test_webserver_down_gives_clear_error():
    api = DagsterAPI(Connection(port=free_port(), timeout=2))
    with pytest.raises(DagsterUnavailable, match="run_pipeline.sh ui"):
        api.runs()
    with pytest.raises(DagsterUnavailable, match="not reachable"):
        api.submit("ingestion_job")
    with pytest.raises(DagsterUnavailable):
        api.server_info()


def test_a_webserver_that_does_not_answer_is_called_busy_not_missing():
    """A server that takes the connection and never answers (busy or stuck) is told apart from one that is not
    there: a refresh started against it may have begun, so the words say to look before starting another."""
    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(8)  # the kernel accepts connections; nothing ever reads or answers them
        api = DagsterAPI(Connection(port=stuck.getsockname()[1], timeout=1, launch_timeout=1))
        with pytest.raises(DagsterUnavailable, match="did not answer in time.*look at the runs"):
            api.runs()
        with pytest.raises(DagsterUnavailable, match="did not answer in time"):
            api.submit("ingestion_job")


def test_failed_run_explains_itself(live, trained):
    config = {"ops": {"validation_report": {"config": {"min_quality_score": 99.9}}}}
    run_id = live.api.submit("complete_pipeline_job", run_config=config)
    assert wait_for_run(live.api, run_id) == "FAILURE"
    message = live.api.failure_message(run_id)
    assert "below the threshold 99.9" in message and "lower the minimum quality score" in message
    assert load_model(live.workspace.model_file).card.run_id != run_id  # the model was not replaced


def test_instance_storage_is_the_one_configured(live, trained):
    """The postgres variant really stores runs in PostgreSQL (not a silent SQLite fallback)."""
    home = live.server.home
    if live.storage == "postgres":
        import psycopg2

        env = live.server.env
        with (
            psycopg2.connect(
                host=env["DAGSTER_PG_HOST"],
                port=env["DAGSTER_PG_PORT"],
                user=env["DAGSTER_PG_USER"],
                dbname=env["DAGSTER_PG_DB"],
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("select run_id from runs")
            assert trained in {row[0] for row in cur.fetchall()}
        assert not (home / "history" / "runs.db").exists()
    else:
        assert (home / "history" / "runs.db").exists()
