"""Sign-in that fails closed, seen in a real headless Chromium against real Streamlit servers."""

import pytest

from tests.browser import MAIN, SIDEBAR_NAV, open_app, settle, shot
from tests.servers import free_port, streamlit_server

pytestmark = pytest.mark.browser


def closed_page(browser, url: str, words: str, name: str) -> None:
    """The app shows only a stop page with `words`: no navigation, no page, no refresh."""
    page = open_app(browser, url)
    page.locator(MAIN).get_by_test_id("stAlertContentError").filter(has_text=words).wait_for(timeout=60_000)
    settle(page)
    shot(page, name)
    assert page.locator(SIDEBAR_NAV).count() == 0
    assert page.get_by_role("button", name="Start refresh").count() == 0
    assert page.get_by_role("textbox", name="Password").count() == 0


def no_dagster() -> dict[str, str]:
    return {"DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(free_port())}


def test_unreadable_secrets_file_keeps_the_app_closed(browser, tmp_path):
    broken = tmp_path / "secrets.toml"
    broken.write_text('[users.olga]\npassword_hash = "pbkdf2_sha256$600000$ab\nrole = "operator"\n')
    with streamlit_server(no_dagster(), tmp_path / "streamlit.log", ("--secrets.files", str(broken))) as url:
        closed_page(browser, url, "sign-in settings cannot be read", "closed_unreadable_secrets")


def test_no_sign_in_on_every_interface_means_no_app(browser, tmp_path):
    with streamlit_server(no_dagster(), tmp_path / "streamlit.log", address="0.0.0.0") as url:
        closed_page(browser, url, "can be reached from other machines, and no sign-in", "closed_all_interfaces")


def test_started_from_another_folder_without_sign_in_stays_closed(browser, tmp_path):
    """Streamlit then reads none of the project's .streamlit/ files and listens on every interface."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with streamlit_server(no_dagster(), tmp_path / "streamlit.log", address=None, cwd=elsewhere) as url:
        closed_page(browser, url, "can be reached from other machines, and no sign-in", "closed_other_folder")
