"""The Recommendations and Model history pages in a real headless Chromium: open a customer from the list
and read why, on a desktop and on a 400 px phone screen, then go back to an earlier model after confirming."""

from __future__ import annotations

import re
import shutil

import pytest

from dagster_project import model_store
from dagster_project.recommender import load_model
from streamlit_app.customer_tables import sort_customers
from streamlit_app.model_versions import version_label
from tests.browser import ARTIFACTS, MAIN, at_width, heading, keyed, open_app, settle, shot, visit
from tests.servers import streamlit_server, wait_for_run

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
PHONE = {"width": 400, "height": 900}


def tall_shot(page, name: str, width: int) -> None:
    """The whole page: Streamlit scrolls inside its main area, so the window is made as tall as the page."""
    height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": width, "height": max(900, min(int(height), 4000))})
    shot(page, name)


def within_width(locator, width: int) -> None:
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def test_open_a_customer_from_the_list_and_roll_back(live, trained, browser, tmp_path):
    if len(model_store.list_versions(live.workspace.models)) < 2:  # a second version to go back from
        run_id = live.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "tests"})
        assert wait_for_run(live.api, run_id) == "SUCCESS"
    models = tmp_path / "models"  # a copy: going back here leaves the session's served model alone
    shutil.copytree(live.workspace.models, models)
    model = load_model(models / "collaborative_filtering.pkl")
    first = sort_customers(model.customers(), "Most spent").iloc[0]  # the list's first row
    explanation = model.recommend(first["user_id"], n=10)["explanation"].iloc[0]
    settings = {**live.app_env(), "RECOMART_MODELS_DIR": str(models)}

    with streamlit_server(settings, tmp_path / "streamlit.log") as url:
        page = open_app(browser, url)
        page.set_viewport_size({"width": 1280, "height": 1000})
        visit(page, f"{url}/recommendations")
        # The table is drawn on a canvas once its code has loaded (a placeholder stands there before).
        grid = page.locator("[class*='st-key-customer_list_']").get_by_test_id("data-grid-canvas")
        grid.wait_for(timeout=60_000)
        settle(page)
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 20, box["y"] + 35 + 17)  # the first row's selection box (rows are 35 px)
        heading(page, f"{first['name']} ({first['user_id']})").wait_for(timeout=30_000)
        settle(page)
        lists = page.locator(MAIN).get_by_test_id("stMarkdownContainer").locator("table")
        reason = lists.first.get_by_text(explanation, exact=True)
        reason.first.wait_for()
        assert explanation.startswith("because you bought")
        tall_shot(page, "recommendations_customer", 1280)

        # A phone: the product and why it is suggested are readable without scrolling sideways.
        page.set_viewport_size(PHONE)
        top_row = lists.first.locator("tbody tr").first
        for cell in (top_row.locator("td").nth(1), top_row.locator("td").nth(2)):
            within_width(cell, PHONE["width"])
        within_width(lists.first, PHONE["width"])
        assert "because you bought" in top_row.inner_text()
        shot(page, "recommendations_400")

        # Going back to an earlier version: chosen, compared with the served one, confirmed.
        page.set_viewport_size({"width": 1280, "height": 1000})
        visit(page, f"{url}/model_history")
        heading(page, "Go back to an earlier version").wait_for(timeout=60_000)
        settle(page)
        tall_shot(page, "model_history", 1280)
        older = model_store.list_versions(models)[1]
        keyed(page, "version_choice").get_by_role("combobox").click()
        page.get_by_role("option", name=re.compile(f"^{re.escape(version_label(older.stem.split('-', 1)[1]))}")).click()
        confirm = keyed(page, "serve_version").get_by_role("button")
        confirm.wait_for(timeout=30_000)
        settle(page)
        assert keyed(page, "rollback_panel").get_by_text("served now", exact=False).count() >= 1
        assert load_model(models / "collaborative_filtering.pkl").card.version != model_store.version_name(older)
        tall_shot(page, "model_history_confirm", 1280)
        confirm.click()
        page.locator(MAIN).get_by_text("Rolled back.", exact=True).wait_for(timeout=30_000)
        settle(page)
        assert load_model(models / "collaborative_filtering.pkl").card.version == model_store.version_name(older)

        # The lists across all customers are the newer model's until the next refresh: the tab says so.
        visit(page, f"{url}/recommendations")
        tab = page.locator(MAIN).get_by_role("tab", name="Across all customers")
        tab.wait_for(timeout=60_000)
        settle(page)  # the page drawn in full: a click before would be undone by the run still drawing it
        tab.click()
        page.locator(MAIN).get_by_text("These lists are from another model than the one served now").wait_for(
            timeout=60_000
        )
        settle(page)
        tall_shot(page, "recommendations_lists_other_model", 1280)
        at_width(page, PHONE["width"], PHONE["height"])  # the sidebar slid away
        within_width(page.locator(MAIN).get_by_text("These lists are from another model"), PHONE["width"])
        shot(page, "recommendations_lists_other_model_400")
    assert (ARTIFACTS / "recommendations_customer.png").stat().st_size > 10_000
