"""The Refresh page through AppTest against the live webserver: the files a refresh will read, uploads
refused or accepted by the pipeline's own rules, a refresh followed in plain words, before → after on
success, the explanation on failure, and the page while Dagster is down."""

from __future__ import annotations

import hashlib

import pandas as pd
from streamlit.testing.v1 import AppTest

from dagster_project import uploads
from streamlit_app.dagster_api import FINISHED_STATUSES, DagsterAPI
from streamlit_app.run_story import WAITING
from tests.apptest import open_page, texts
from tests.servers import free_port, wait_for_run, wait_until
from tests.workspace import exports, folder_bytes

# What the page says of a run, in the order a run goes through it; each stage's words.
STAGES = ("waiting", "running", "finished")
STAGE_WORDS = {
    "waiting": ("Waiting for the pipeline to start",),
    "running": ("Running:",),
    "finished": ("Done in", "The refresh failed"),
}


def open_refresh() -> AppTest:
    return open_page("refresh")


def stage(status: str) -> str:
    return "waiting" if status in WAITING else "finished" if status in FINISHED_STATUSES else "running"


def check_words(at: AppTest, api: DagsterAPI, run_id: str, before: str) -> str:
    """The page's words about the run are those of the status it read. That status lies between `before`
    (read before the page was drawn) and the one read right after (a run only moves forward), so the words
    are checked exactly when both agree and against the stages in between when the run moved meanwhile.
    Returns the stage shown."""
    after = api.run(run_id).status
    shown = [name for name, words in STAGE_WORDS.items() if any(w in texts(at) for w in words)]
    assert len(shown) == 1, (shown, texts(at))
    assert STAGES.index(stage(before)) <= STAGES.index(shown[0]) <= STAGES.index(stage(after)), (
        before,
        shown[0],
        after,
    )
    assert after not in texts(at)  # words, never Dagster's status names
    return shown[0]


def follow_run(at: AppTest, api: DagsterAPI, run_id: str, words: str, what: str) -> list[str]:
    """Redraw the page until the run has finished with `words` shown, checking each drawing's words against
    the run's status at that moment; return the stages shown, in order."""
    seen: list[str] = []

    def finished() -> bool:
        before = api.run(run_id).status
        at.run()
        assert not at.exception, at.exception
        seen.append(check_words(at, api, run_id, before))
        return seen[-1] == "finished"

    wait_until(finished, 240, what, interval=1)
    assert words in texts(at)
    return seen


def test_upload_refused_then_accepted_refreshed_and_put_back(app_env, trained):
    data = app_env.workspace.data
    original = folder_bytes(data)  # kept sets of earlier tests on the live folder included
    inputs = exports(data)
    earlier = {k.name for k in uploads.kept_sets(data)}
    try:
        at = open_refresh()

        # Before starting: the exports it will read, in the table a user reads; the job in plain words.
        listed = at.dataframe[0].value.set_index("file")
        assert listed["rows"].to_dict() == {
            "users1.csv": "927",
            "users2.csv": "456",
            "products.json": "101",
            "transactions.csv": "3,001",
        }
        assert listed["holds"].to_dict()["users1.csv"] == "Customers"
        assert listed["holds"].to_dict()["transactions.csv"] == "Purchases"
        assert "kB" in listed.loc["transactions.csv", "size"]
        job = at.radio(key="job_choice")
        assert job.value == "complete_pipeline_job"
        assert "complete_pipeline_job" not in texts(at) and "Refresh the data and the model" in str(job.proto.options)
        assert at.button(key="start_refresh").disabled is False

        # A bad upload: purchases by customers nobody knows. Refused with the rule and an example row.
        purchases = pd.read_csv(data / "transactions.csv", dtype=str)
        purchases["user_id"] = "999999"
        at.file_uploader[0].set_value(("transactions.csv", purchases.to_csv(index=False).encode(), "text/csv")).run()
        shown = texts(at)
        assert "These files cannot be used; the data folder is unchanged" in shown
        assert "below the minimum of 50" in shown and "`user_known`" in shown
        examples = [d.value for d in at.dataframe if "row" in d.value.columns]
        example = next(e for e in examples if "user_id" in e.columns)
        assert example.iloc[0]["file"] == "transactions.csv" and example.iloc[0]["row"] == "1"
        assert example.iloc[0]["user_id"] == "999999"
        assert not [b for b in at.button if b.key == "accept_upload"]
        assert folder_bytes(data) == original

        # A good upload: the same customers plus three new ones; accepted, the old files kept, a refresh started.
        users2 = (data / "users2.csv").read_text()
        extra = "".join(
            f'"{9100 + i}","New Customer {i}","new{i}@example.com",30,"F","ES","2026-11-01"\n' for i in range(3)
        )
        good = [
            ("users1.csv", (data / "users1.csv").read_bytes(), "text/csv"),
            ("users2.csv", (users2 + extra).encode(), "text/csv"),
        ]
        at.file_uploader[0].set_value(good).run()
        assert "These files can be used" in texts(at)
        assert "Customers: replaces users1.csv, users2.csv" in texts(at)
        assert at.radio(key="after_upload").value == "start"
        at.button(key="accept_upload").click().run()  # submits the run, then draws it
        assert not at.exception, at.exception
        assert (data / "users2.csv").read_text() == users2 + extra
        (kept,) = [k for k in uploads.kept_sets(data) if k.name not in earlier]
        assert {n for n, _ in kept.files} == {"users1.csv", "users2.csv"}
        assert hashlib.sha256((kept.path / "users2.csv").read_bytes()).hexdigest() == inputs["users2.csv"]
        run_id = at.session_state["tracked_run"]
        assert "A refresh has started" in texts(at)
        check_words(at, app_env.api, run_id, before="QUEUED")  # a new run is queued first
        seen = follow_run(at, app_env.api, run_id, "Done in", "the refresh after the upload succeeding")
        assert seen == sorted(seen, key=STAGES.index)
        assert app_env.api.run(run_id).status == "SUCCESS"
        metrics = {m.label: m for m in at.metric}
        assert metrics["Customers"].value == "1,386" and metrics["Customers"].proto.delta == "+3"
        assert metrics["Purchases"].value == "3,001" and metrics["Purchases"].proto.delta == "no change"
        assert "Quality score" in metrics and "Hit rate of the new model" in metrics
        assert "the app now serves the new model" in texts(at)
        links = [link.proto.page for link in at.get("page_link")]
        assert "recommendations" in links, links
        steps = next(d.value for d in at.dataframe if "technical name" in d.value.columns or "key" in d.value.columns)
        assert "Train and measure the new model" in set(steps["step"])
        assert "collaborative_filtering_model" in set(steps.iloc[:, -1])

        # A refresh that stops at the quality gate: the reason, wrapped, and that the model stays.
        served = app_env.workspace.model_file.read_bytes()
        at.number_input[0].set_value(99.0).run()
        at.button(key="start_refresh").click().run()
        failed_run = at.session_state["tracked_run"]
        assert failed_run != run_id
        check_words(at, app_env.api, failed_run, before="QUEUED")
        follow_run(at, app_env.api, failed_run, "The refresh failed", "the refresh stopping at the quality gate")
        failure = next(e.value for e in at.error if "The refresh failed" in e.value)
        assert "the current model stays in place" in failure and "below the threshold 99" in failure
        assert "What to do" in texts(at) and not at.get("code")
        assert app_env.workspace.model_file.read_bytes() == served

        # Put the replaced files back (with a confirm step), then refresh so the live instance is as it was.
        label = f"the files replaced on {kept.when:%Y-%m-%d at %H:%M:%S} UTC"
        assert at.selectbox(key="restore_choice").options == [label]
        at.button(key="restore").click().run()
        assert "in place of the current customers files" in texts(at)
        at.button(key="restore_confirm").click().run()
        assert not at.exception, at.exception
        assert exports(data) == inputs
        at.number_input[0].set_value(50.0).run()
        at.button(key="start_refresh").click().run()
        last_run = at.session_state["tracked_run"]
        follow_run(at, app_env.api, last_run, "Done in", "the refresh on the files put back")
        assert app_env.api.run(last_run).status == "SUCCESS"
        assert {m.label: m.value for m in at.metric}["Customers"] == "1,383"
    finally:  # after a failure half-way, the live instance as the other tests expect it
        if exports(data) != inputs:
            for kept in uploads.kept_sets(data)[:1]:
                uploads.restore(data, kept.name)
            rerun = app_env.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "app"})
            wait_for_run(app_env.api, rerun)


def test_refresh_page_while_dagster_is_down(app_env, monkeypatch):
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    at = open_refresh()
    banners = [e.value for e in at.error]
    assert len(banners) == 1 and "The pipeline service is not answering right now" in banners[0]
    assert "run_pipeline.sh" not in banners[0]  # the engineer's detail is in the expander
    details = next(x for x in at.expander if x.label == "Details for engineers")
    assert any("run_pipeline.sh" in e.value.replace("\\", "") for e in details.markdown)
    start = at.button(key="start_refresh")
    assert start.disabled
    at.run()
    assert len(at.error) == 1  # drawn again: still one banner
    assert at.dataframe[0].value["file"].tolist() == ["users1.csv", "users2.csv", "products.json", "transactions.csv"]
    monkeypatch.setenv("DAGSTER_PORT", str(app_env.server.port))
    at.run()
    assert not at.error and at.button(key="start_refresh").disabled is False


def test_files_are_not_swapped_under_a_running_refresh(app_env, trained):
    data = app_env.workspace.data
    before = folder_bytes(data)
    at = open_refresh()
    late = b'"9300","Late Customer","late@example.com",40,"M","FR","2026-11-02"\n'
    upload = [
        ("users1.csv", (data / "users1.csv").read_bytes(), "text/csv"),
        ("users2.csv", (data / "users2.csv").read_bytes() + late, "text/csv"),
    ]
    at.file_uploader[0].set_value(upload).run()
    assert "These files can be used" in texts(at)
    running = app_env.api.submit("ingestion_job", tags={"recomart/launched_by": "app", "recomart/user": "tests"})
    try:
        at.button(key="accept_upload").click().run()
        assert "A refresh is reading the data folder right now" in texts(at)
        assert folder_bytes(data) == before
    finally:
        assert wait_for_run(app_env.api, running) == "SUCCESS"
