"""End to end in a real headless Chromium: open the app, refresh, see success, browse a user's list."""

import os
import shutil
from pathlib import Path

import pytest

from dagster_project.recommender import load_model
from tests.conftest import ROOT
from tests.servers import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser(tmp_path, monkeypatch):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (./run_pipeline.sh test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("HOME", str(tmp_path))  # chromium writes under $HOME
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser
        finally:
            browser.close()


def settle(page):
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=60_000)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_refresh_then_browse_recommendations(live, trained, browser, tmp_path):
    env = {"DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(live.server.port), **live.workspace.env()}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_text("Headline figures").wait_for(timeout=60_000)
        settle(page)
        shot(page, "overview")

        page.get_by_role("link", name="Refresh").click()
        page.get_by_role("button", name="Start refresh").wait_for(timeout=30_000)
        settle(page)
        page.get_by_role("button", name="Start refresh").click()
        page.get_by_text("Run succeeded").wait_for(timeout=240_000)
        shot(page, "refresh")
        runs = live.api.runs(limit=1)
        assert runs[0]["status"] == "SUCCESS" and runs[0]["launchedBy"].startswith("RecoMart app")

        user = load_model(live.workspace.model_file).user_ids[0]
        # The Refresh page reruns once when the run ends; let that finish so the click is not lost to it.
        page.wait_for_timeout(1000)
        settle(page)
        page.get_by_role("link", name="Recommendations").click()
        box = page.get_by_label("Customer id or name")
        box.wait_for(timeout=60_000)
        box.fill(user)
        box.press("Enter")
        page.get_by_text("New for this customer").wait_for(timeout=30_000)
        settle(page)
        page.get_by_role("button", name="Download as CSV").wait_for(timeout=30_000)  # the list is shown
        path = shot(page, "recommendations")
        assert path.stat().st_size > 10_000

        for name in ("runs", "data_quality"):
            page.get_by_role("link", name=name.replace("_", " ").capitalize()).click()
            page.wait_for_timeout(500)
            settle(page)
            page.get_by_role("heading", name=name.replace("_", " ").capitalize()).first.wait_for(timeout=30_000)
            shot(page, name)


def test_sign_in_and_roles_in_the_browser(live, trained, browser, tmp_path):
    from streamlit_app.auth import hash_password

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[users.olga]\npassword_hash = "{hash_password("op-secret")}"\nrole = "operator"\n'
                       f'[users.vic]\npassword_hash = "{hash_password("view-secret")}"\nrole = "viewer"\n')
    env = {"DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(live.server.port), **live.workspace.env()}
    with streamlit_server(env, tmp_path / "streamlit.log", ("--secrets.files", str(secrets))) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def sign_in(name: str, password: str) -> None:
            page.goto(url)
            page.get_by_label("User name").fill(name)
            page.get_by_role("textbox", name="Password").fill(password)
            page.get_by_role("button", name="Sign in").click()

        sign_in("vic", "wrong")
        page.get_by_text("Unknown user name or wrong password").wait_for(timeout=30_000)

        sign_in("vic", "view-secret")
        page.get_by_text("Headline figures").wait_for(timeout=60_000)
        settle(page)
        page.get_by_role("link", name="Recommendations").wait_for(timeout=30_000)
        assert page.get_by_role("link", name="Refresh").count() == 0
        shot(page, "signed_in_viewer")

        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("User name").wait_for(timeout=30_000)
        sign_in("olga", "op-secret")
        page.get_by_role("link", name="Refresh").wait_for(timeout=60_000)
