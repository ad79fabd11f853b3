"""In a real Chromium: the Overview's verdict in its three states (screenshots for the docs), then the
pipeline service going away and coming back while a page is open: one plain banner, however many clicks,
and the page recovering by itself without navigation."""

from __future__ import annotations

import pytest

from tests.browser import MAIN, heading, nav_link, open_app, settle, shot, visit
from tests.overview_states import make_failed, make_healthy, rolled_back
from tests.servers import stop, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
OUTAGE = "The pipeline service is not answering"
WIDE, NARROW = {"width": 1280, "height": 1000}, {"width": 400, "height": 1000}


def alert(page, kind: str, text: str):
    """A banner of the main area (kind: Success, Warning, Error, Info) holding `text`."""
    return page.locator(MAIN).get_by_test_id(f"stAlertContent{kind}").filter(has_text=text)


def both_widths(browser, page, name: str) -> None:
    """Screenshots at 1280 px (the docs) and, in a new page as a phone opens it, at 400 px."""
    shot(page, name)
    narrow = open_app(browser, page.url, NARROW)
    try:
        narrow.locator(MAIN).get_by_role("heading").first.wait_for(timeout=60_000)
        settle(narrow)
        shot(narrow, f"{name}_400")
    finally:
        narrow.close()


def test_overview_states_then_outage_and_recovery(verdict_live, browser, tmp_path):
    live = verdict_live
    env = live.app_env()
    make_healthy(live)
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = open_app(browser, url, WIDE)
        alert(page, "Success", "All is well").wait_for(timeout=60_000)
        settle(page)
        both_widths(browser, page, "overview_healthy")
        shot(page, "overview")  # the README's
        nav_link(page, "Data quality").click()
        heading(page, "Problems found, and what to do").wait_for(timeout=60_000)
        settle(page)
        both_widths(browser, page, "data_quality")
        nav_link(page, "Runs").click()
        heading(page, "Steps of a run").wait_for(timeout=60_000)
        settle(page)
        both_widths(browser, page, "runs")

        with rolled_back(live):
            visit(page, url)
            alert(page, "Warning", "rolled back to the version trained").wait_for(timeout=60_000)
            settle(page)
            both_widths(browser, page, "overview_rolled_back")

        make_failed(live)
        visit(page, url)
        alert(page, "Error", "failed: Quality score").wait_for(timeout=60_000)
        settle(page)
        both_widths(browser, page, "overview_failed")

        # The pipeline service goes away while the Data quality page is open.
        nav_link(page, "Data quality").click()
        heading(page, "Problems found, and what to do").wait_for(timeout=60_000)
        settle(page)
        stop(live.server.web)
        try:
            for title in ("Runs", "Overview", "Data quality", "Runs", "Data quality"):
                nav_link(page, title).click()
                heading(page, title if title != "Overview" else "RecoMart").wait_for(timeout=60_000)
                alert(page, "Error", OUTAGE).wait_for(timeout=60_000)
                page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
                    state="attached", timeout=60_000
                )
                assert alert(page, "Error", OUTAGE).count() == 1, title
                assert page.get_by_text("Details for the engineer").count() == 1, title
            # What the page can show without the service: the report the pipeline last wrote.
            page.locator(MAIN).get_by_text("From the report the pipeline last wrote").wait_for(timeout=30_000)
            page.get_by_text("Details for the engineer").click()
            page.locator(MAIN).get_by_text("./run_pipeline.sh ui").wait_for(timeout=10_000)
            shot(page, "data_quality_outage")
        finally:
            live.server.start_webserver()  # the same port
        # No navigation: the page notices by itself and shows the live results again.
        page.locator(MAIN).get_by_text("From the last data check").wait_for(timeout=60_000)
        alert(page, "Error", OUTAGE).wait_for(state="detached", timeout=30_000)
        settle(page)
        heading(page, "Data quality over time").wait_for(timeout=10_000)
        shot(page, "data_quality_recovered")
        make_healthy(live)
