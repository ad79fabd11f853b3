"""The webserver or the daemon restarts during a run: the app copes, then shows the run's real outcome."""

from contextlib import contextmanager

import pytest
from streamlit.testing.v1 import AppTest

from tests.servers import DagsterServer, stop, wait_until
from tests.workspace import APP, make_workspace

pytestmark = pytest.mark.webserver


@contextmanager
def refresh_started(tmp_path, sample_source, monkeypatch, extra_env=None):
    """A private webserver + daemon, and the Refresh page after one click on "Start refresh"."""
    ws = make_workspace(tmp_path / "ws", sample_source)
    server = DagsterServer(tmp_path / "home", {**ws.env(), **(extra_env or {})})
    try:
        server.start_webserver()
        server.start_daemon()
        monkeypatch.setenv("DAGSTER_PORT", str(server.port))
        for key, value in ws.env().items():
            monkeypatch.setenv(key, value)
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        at.switch_page("app_pages/refresh.py").run()
        at.button[0].click().run()
        yield ws, server, at
    finally:
        server.stop()


def test_app_recovers_when_the_webserver_restarts_mid_run(tmp_path, sample_source, monkeypatch):
    with refresh_started(tmp_path, sample_source, monkeypatch) as (_, server, at):
        run_id = at.session_state["tracked_run"]

        stop(server.web)
        at.run()
        assert not at.exception
        assert any("pipeline service is not answering" in e.value for e in at.error)

        server.start_webserver()  # same port

        def shows_success() -> bool:
            at.run()
            return any("Done in" in str(e.value) for e in at.success)

        wait_until(shows_success, 240, "the page showing the run's success", interval=1)
        assert at.session_state["tracked_run"] == run_id and not at.exception


def test_daemon_restart_mid_run_shows_the_real_outcome_and_the_next_refresh_works(tmp_path, sample_source, monkeypatch):
    from streamlit_app.dagster_api import Connection, DagsterAPI

    # Hold the features write for a while, so the daemon stops while the run is in progress.
    with refresh_started(tmp_path, sample_source, monkeypatch, {"RECOMART_WRITE_PAUSE": "30:features"}) as (
        ws,
        server,
        at,
    ):
        api = DagsterAPI(Connection(port=server.port))
        first = at.session_state["tracked_run"]
        wait_until(lambda: list((ws.storage / "features").glob(".recomart-tmp-*.tmp")), 120, "the run writing features")

        stop(server.daemon)
        server.env.pop("RECOMART_WRITE_PAUSE")
        server.start_daemon()

        def shows_the_end() -> bool:
            at.run()
            return any("The refresh failed" in e.value for e in at.error)

        wait_until(shows_the_end, 120, "the page showing the interrupted run's failure", interval=1)
        assert api.run_status(first) == "FAILURE"
        assert any("The run was interrupted" in e.value and "current model stays in place" in e.value for e in at.error)
        assert not ws.model_file.exists()  # nothing half-published

        at.button[0].click().run()  # the same page, no reload: a new refresh
        second = at.session_state["tracked_run"]
        assert second != first
        wait_until(lambda: api.run_status(second) in ("SUCCESS", "FAILURE"), 240, "the second run finishing", 1)
        assert api.run_status(second) == "SUCCESS" and ws.model_file.exists()
