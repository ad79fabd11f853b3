"""The Refresh page's two kinds of refresh in a real headless Chromium: new data only is the default once
a model exists, says what it reads, and runs; screenshots at 1280 and 400 px."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagster_project import transaction_files
from streamlit_app.dagster_api import Connection, DagsterAPI
from tests.browser import MAIN, heading, keyed, nav_link, open_app, settle, whole_page
from tests.servers import dagster_server, streamlit_server, wait_for_run
from tests.workspace import LiveDagster, make_workspace

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
SHOTS = Path(os.environ.get("RECOMART_SHOTS", "")) if os.environ.get("RECOMART_SHOTS") else None


def test_new_data_only_is_offered_first_and_runs(tmp_path, sample_source, browser):
    ws = make_workspace(tmp_path, sample_source)
    with dagster_server(tmp_path / "dagster_home", ws.env()) as server:
        live = LiveDagster(server, ws, Connection(port=server.port), DagsterAPI(Connection(port=server.port)))
        first = live.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "tests"})
        assert wait_for_run(live.api, first) == "SUCCESS"
        with streamlit_server(live.app_env(), tmp_path / "streamlit.log") as url:
            page = open_app(browser, url)
            heading(page, "Headline figures").wait_for(timeout=60_000)
            nav_link(page, "Refresh").click()
            main = page.locator(MAIN)
            kinds = keyed(page, "refresh_kind")
            kinds.wait_for(timeout=30_000)
            settle(page)
            new_data = kinds.get_by_role("radio", name="New data only", exact=False)
            assert new_data.is_checked()
            assert kinds.get_by_text("Everything: reads and checks every purchase file again").is_visible()
            if SHOTS:
                whole_page(page, SHOTS / "refresh-1280.png", 1280)
                whole_page(page, SHOTS / "refresh-400.png", 400)
                page.set_viewport_size({"width": 1400, "height": 1000})
            main.get_by_role("button", name="Start refresh", exact=True).click()
            main.get_by_text("This refresh reads no purchase file: none is new or changed").wait_for(timeout=30_000)
            main.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in").wait_for(timeout=240_000)
            settle(page)
            [run] = [r for r in live.api.runs(limit=10) if r.run_id != first]
            assert wait_for_run(live.api, run.run_id) == "SUCCESS"
            assert run.tags["recomart/refresh"] == transaction_files.NEW_DATA
            assert transaction_files.RANGE_START_TAG not in run.tags  # nothing new: no purchase file read
            if SHOTS:
                whole_page(page, SHOTS / "refresh-done-1280.png", 1280)
                whole_page(page, SHOTS / "refresh-done-400.png", 400)
