"""The Automation page in a real headless Chromium, at a phone's width: read the state, switch the nightly refresh."""

import pytest

from tests.browser import MAIN, heading, keyed, open_app, settle, shot
from tests.servers import streamlit_server, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.webserver]


def test_switch_the_nightly_refresh_at_400_px(live, browser, tmp_path):
    settings = live.app_env()
    with streamlit_server(settings, tmp_path / "streamlit.log") as url:
        page = open_app(browser, url)
        page.set_viewport_size({"width": 400, "height": 900})
        main = page.locator(MAIN)
        page.goto(f"{url}/automation")
        heading(page, "Automation").wait_for(timeout=60_000)
        main.get_by_text("Nightly refresh at 02:00 — off", exact=True).wait_for(timeout=30_000)
        settle(page)
        assert main.get_by_text("Tell people when a refresh fails — on", exact=False).count() == 1
        try:
            keyed(page, "switch_daily_pipeline").get_by_role("button", name="Switch on").click()
            main.get_by_text("Nightly refresh is now switched on.").wait_for(timeout=30_000)
            settle(page)
            assert live.api.automations()["daily_pipeline"].running
            assert main.get_by_text("Nightly refresh at 02:00 — on, next ", exact=False).count() == 1
            shot(page, "automation")
            keyed(page, "switch_daily_pipeline").get_by_role("button", name="Switch off").click()
            main.get_by_text("Nightly refresh is now switched off.").wait_for(timeout=30_000)
            settle(page)
            assert not live.api.automations()["daily_pipeline"].running
        finally:
            live.api.set_automation("daily_pipeline", False)


def test_the_dagster_ui_shows_the_models_freshness(live, trained, browser):
    """What engineers see: the model's freshness policy and Dagster's verdict on its asset page."""
    wait_until(lambda: live.api.freshness()["collaborative_filtering_model"].state == "fresh", 120, "fresh", 1)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live.server.url}/assets/collaborative_filtering_model")
    page.get_by_text("Fails if more than 26 hours since last materialization").wait_for(timeout=60_000)
    page.get_by_text("Passing", exact=True).first.wait_for(timeout=30_000)
    shot(page, "dagster_ui_model_freshness")
