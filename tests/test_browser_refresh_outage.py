"""The Refresh page in a real headless Chromium while the Dagster webserver is down, and when it comes back:
one plain banner, the Start button disabled, and the page carrying on by itself (no reload, no click)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import MAIN, at_width, heading, nav_link, open_app, whole_page
from tests.servers import DagsterServer, stop, streamlit_server
from tests.workspace import make_workspace

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
SHOTS = Path(os.environ.get("RECOMART_SHOTS_DIR", Path(__file__).resolve().parent.parent / "test-artifacts"))


def test_refresh_page_explains_an_outage_and_recovers_by_itself(tmp_path, sample_source, browser):
    from playwright.sync_api import expect

    ws = make_workspace(tmp_path / "ws", sample_source)
    server = DagsterServer(tmp_path / "home", ws.env())
    try:
        server.start_webserver()  # for its port; no daemon: nothing runs here
        settings = {"DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(server.port), **ws.env()}
        with streamlit_server(settings, tmp_path / "streamlit.log") as url:
            stop(server.web)
            page = open_app(browser, url)
            at_width(page, 1280)
            main = page.locator(MAIN)
            nav_link(page, "Refresh").click()
            heading(page, "Refresh the data and the model").wait_for(timeout=60_000)
            banner = main.get_by_test_id("stAlertContentError").filter(
                has_text="The pipeline service is not answering right now"
            )
            banner.wait_for(timeout=60_000)
            start = main.get_by_role("button", name="Start refresh", exact=True)
            expect(start).to_be_disabled()
            expect(main.get_by_text("Details for engineers")).to_have_count(1)
            expect(main.get_by_test_id("stAlertContentError")).to_have_count(1)  # one banner, however often it checks
            for width in (1280, 400):
                whole_page(page, SHOTS / f"refresh-down-{width}.png", width)
                expect(banner).to_be_visible()
            at_width(page, 1280)

            server.start_webserver()  # the same port
            banner.wait_for(state="detached", timeout=30_000)  # no reload, no click
            expect(start).to_be_enabled(timeout=30_000)
            expect(main.get_by_test_id("stAlertContentError")).to_have_count(0)
    finally:
        server.stop()
