"""End to end in a real headless Chromium: open the app, refresh, see success, browse a user's list."""

import re

import pytest

from dagster_project.recommender import load_model
from tests.browser import MAIN, heading, keyed, nav_link, open_app, settle, shot
from tests.servers import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.webserver]


def test_refresh_then_browse_recommendations(live, trained, browser, tmp_path):
    with streamlit_server(live.app_env(), tmp_path / "streamlit.log") as url:
        page = open_app(browser, url)
        main = page.locator(MAIN)
        heading(page, "Headline figures").wait_for(timeout=60_000)
        settle(page)
        shot(page, "overview")

        nav_link(page, "Refresh").click()
        start = main.get_by_role("button", name="Start refresh", exact=True)
        start.wait_for(timeout=30_000)
        settle(page)
        start.click()
        run_link = main.get_by_role("link", name="Open in the Dagster UI")
        run_link.wait_for(timeout=30_000)
        run_id = run_link.get_attribute("href").rsplit("/", 1)[1]
        assert re.fullmatch(r"[0-9a-f-]{36}", run_id)
        main.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in").wait_for(timeout=240_000)
        settle(page)  # the page reruns once when the run ends; a click during that rerun would be lost
        shot(page, "refresh")
        run = live.api.run(run_id)
        assert run.status == "SUCCESS" and run.launched_by.startswith("RecoMart app")

        user = load_model(live.workspace.model_file).user_ids[0]
        nav_link(page, "Recommendations").click()
        box = keyed(page, "customer_query").get_by_role("textbox")
        box.wait_for(timeout=60_000)
        settle(page)
        box.fill(user)
        box.press("Enter")
        main.get_by_role("tab", name="New for this customer", exact=True).wait_for(timeout=30_000)
        settle(page)
        main.get_by_test_id("stMarkdownContainer").get_by_text(re.compile("^because you bought")).first.wait_for()
        keyed(page, "download_new").get_by_role("button", name="Download as CSV").wait_for()
        path = shot(page, "recommendations")
        assert path.stat().st_size > 10_000

        for name, title in (("runs", "Runs"), ("data_quality", "Data quality")):
            nav_link(page, title).click()
            heading(page, title).wait_for(timeout=30_000)
            settle(page)
            shot(page, name)


def test_sign_in_and_roles_in_the_browser(live, trained, browser, tmp_path):
    from streamlit_app.auth import hash_password

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[users.olga]\npassword_hash = "{hash_password("op-secret")}"\nrole = "operator"\n'
        f'[users.vic]\npassword_hash = "{hash_password("view-secret")}"\nrole = "viewer"\n'
    )
    with streamlit_server(live.app_env(), tmp_path / "streamlit.log", ("--secrets.files", str(secrets))) as url:
        page = open_app(browser, url)

        def sign_in(name: str, password: str) -> None:
            name_box = keyed(page, "sign_in_name").get_by_role("textbox")
            name_box.wait_for(timeout=60_000)
            settle(page)
            name_box.fill(name)
            keyed(page, "sign_in_password").get_by_role("textbox").fill(password)
            page.get_by_test_id("stForm").get_by_role("button", name="Sign in", exact=True).click()

        sign_in("vic", "wrong")
        page.locator(MAIN).get_by_test_id("stAlertContentError").filter(
            has_text="Unknown user name or wrong password"
        ).wait_for(timeout=30_000)

        sign_in("vic", "view-secret")
        heading(page, "Headline figures").wait_for(timeout=60_000)
        settle(page)
        assert nav_link(page, "Recommendations").count() == 1
        assert nav_link(page, "Refresh").count() == 0
        shot(page, "signed_in_viewer")

        keyed(page, "sign_out").get_by_role("button").click()
        sign_in("olga", "op-secret")
        heading(page, "Headline figures").wait_for(timeout=60_000)
        settle(page)
        assert nav_link(page, "Refresh").count() == 1
