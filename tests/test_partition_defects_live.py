"""End to end on a real webserver and daemon: a refresh that names a purchase file the data folder lost, and a
new purchase file unusable on its own while the rest is good, stop in plain words: on the app's pages, in the
failure alert, and with the current model left in place."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from dagster_project import transaction_files
from dagster_project.recommender import load_model
from streamlit_app.dagster_api import Connection, DagsterAPI
from tests.apptest import open_page, texts
from tests.receivers import webhook_receiver
from tests.servers import dagster_server, wait_for_run, wait_until
from tests.workspace import LiveDagster, make_workspace

GONE = "transactions_2026-12-01.csv"
FOREIGN = "transactions_zz_other_shop.csv"


def new_run(api: DagsterAPI, before: set[str]) -> str:
    [run_id] = wait_until(lambda: [r.run_id for r in api.runs(limit=50) if r.run_id not in before], 60, "a run")
    return run_id


@pytest.mark.webserver
def test_unusable_purchase_files_stop_the_refresh_in_plain_words(tmp_path, sample_source, monkeypatch):
    ws = make_workspace(tmp_path, sample_source)
    with webhook_receiver() as (url, hooks):
        env = {**ws.env(), "RECOMART_ALERT_WEBHOOK": f"{url}/hook"}
        with dagster_server(tmp_path / "dagster_home", env) as server:
            api = DagsterAPI(Connection(port=server.port))
            live = LiveDagster(server, ws, Connection(port=server.port), api)
            for key, value in live.app_env().items():
                monkeypatch.setenv(key, value)
            first = api.submit("complete_pipeline_job")
            assert wait_for_run(api, first) == "SUCCESS", (server.home / "daemon.log").read_text()[-3000:]

            # A new file is planned (its partition added, the run's range names it), then leaves the folder
            # before the run starts: the run fails at its first step, naming the file and what to do.
            shutil.copy(ws.data / "transactions.csv", ws.data / GONE)
            api.change_partitions(transaction_files.PARTITIONS_NAME, [GONE], [])
            (ws.data / GONE).unlink()
            tags = {**transaction_files.range_tags(GONE, GONE), "recomart/refresh": transaction_files.NEW_DATA}
            gone_run = api.submit("complete_pipeline_job", tags=tags)
            assert wait_for_run(api, gone_run) == "FAILURE"
            message = api.failure_message(gone_run)
            assert message == transaction_files.not_in_folder(GONE, ws.data)
            assert [s.key for s in api.run(gone_run).steps if s.status == "FAILURE"] == ["raw_data"]
            wait_until(lambda: len(hooks.posts) == 1, 90, "the failure alert")
            alert = hooks.posts[0][1]["text"]
            assert f"Why: {GONE}: this refresh was planned to read this purchase file" in alert
            assert "Put the file back" in alert and "Nonexistent" not in alert and "Dagster" not in alert.split("\n")[2]
            runs_page = texts(open_page("runs", fresh=True))
            assert f"{GONE}: this refresh was planned" in runs_page.replace("\\", "") and "Nonexistent" not in runs_page

            # A new file from another shop (no customer it names is known) while every other line is good: the
            # whole data still scores well, but this file keeps no line, so the refresh stops at the quality gate.
            lines = pd.read_csv(ws.data / "transactions.csv", dtype=str)
            lines.head(40).assign(user_id="77777777").to_csv(ws.data / FOREIGN, index=False)
            at = open_page("refresh")
            assert at.radio(key="refresh_kind").value == transaction_files.NEW_DATA
            before = {r.run_id for r in api.runs(limit=50)}
            at.button(key="start_refresh").click().run()
            assert not at.exception, at.exception
            gate_run = new_run(api, before)
            assert wait_for_run(api, gate_run) == "FAILURE"
            assert api.run(gate_run).tags[transaction_files.RANGE_START_TAG] == FOREIGN
            message = api.failure_message(gate_run)
            assert message.startswith(f"Purchase file {FOREIGN} is far worse than the rest of the data"), message
            assert f"{FOREIGN}: quality score 0.0, below the threshold 50.0 (every one of its 40 lines" in message
            assert "user_known on transactions: 40 of 40 rows fail" in message
            wait_until(lambda: "The refresh failed" in texts(at.run()), 60, "the Refresh page showing the failure")
            assert f"{FOREIGN}: quality score 0.0" in texts(at).replace("\\", "")
            quality_page = texts(open_page("data_quality", fresh=True)).replace("\\", "")
            assert f"Training was stopped: the purchase file {FOREIGN} has a data quality of 0.0%" in quality_page
            assert "below the 50% needed, though the data as a whole scores" in quality_page
            wait_until(lambda: len(hooks.posts) == 2, 90, "the second failure alert")
            alert = hooks.posts[1][1]["text"]
            assert "Failed at: the data-quality gate" in alert and f"{FOREIGN}: quality score 0.0" in alert
            assert load_model(ws.model_file).card.run_id == first  # the model trained before stays in place
