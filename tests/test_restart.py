"""The webserver restarts during a run: the app shows a banner meanwhile, then the run's real final state."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, make_workspace
from tests.servers import DagsterServer, stop, wait_until

pytestmark = pytest.mark.webserver


def test_app_recovers_when_the_webserver_restarts_mid_run(tmp_path, sample_source, monkeypatch):
    ws = make_workspace(tmp_path / "ws", sample_source)
    server = DagsterServer(tmp_path / "home", ws.env())
    try:
        server.start_webserver()
        server.start_daemon()
        monkeypatch.setenv("DAGSTER_PORT", str(server.port))
        for key, value in ws.env().items():
            monkeypatch.setenv(key, value)
        at = AppTest.from_file(str(ROOT / "streamlit_app" / "app.py"), default_timeout=60)
        at.run()
        at.switch_page("app_pages/refresh.py").run()
        at.button[0].click().run()
        run_id = at.session_state["tracked_run"]

        stop(server.web)
        at.run()
        assert not at.exception
        assert any("Dagster is not reachable" in e.value for e in at.error)

        server.start_webserver()  # same port

        def shows_success() -> bool:
            at.run()
            return any("Run succeeded" in str(e.value) for e in at.success)

        wait_until(shows_success, 240, "the page showing the run's success", interval=1)
        assert at.session_state["tracked_run"] == run_id and not at.exception
    finally:
        server.stop()
