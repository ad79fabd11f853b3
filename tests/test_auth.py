"""Sign-in and roles: password hashes, the sign-in form, what viewers and operators may do, the token header."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from streamlit.testing.v1 import AppTest

from streamlit_app import auth
from streamlit_app.dagster_api import Connection, DagsterAPI, DagsterRequestError
from tests.attacks import USERS
from tests.servers import free_port
from tests.workspace import APP, PAGES


def test_password_hashes():
    stored = auth.hash_password("s3cret")
    assert stored.startswith("pbkdf2_sha256$600000$") and "s3cret" not in stored
    assert auth.verify_password("s3cret", stored)
    assert not auth.verify_password("S3cret", stored)
    assert not auth.verify_password("s3cret", stored[:-1] + ("0" if stored[-1] != "0" else "1"))
    assert not auth.verify_password("s3cret", "plain-text")
    assert auth.check_credentials({"users": USERS}, "olga", "op-secret") == auth.User("olga", "operator")
    assert auth.check_credentials({"users": USERS}, "olga", "view-secret") is None
    assert auth.check_credentials({"users": USERS}, "mallory", "x") is None
    assert auth.mode({}) == "open" and auth.mode({"users": USERS}) == "password"
    roles = {"roles": {"operators": ["Ann@Shop.example"]}}
    assert auth.role_for_email(roles, "ann@shop.example", verified=True) == "operator"
    assert auth.role_for_email(roles, "ann@shop.example", verified=False) == "viewer"  # unverified e-mail
    assert auth.role_for_email(roles, "bob@shop.example", verified=True) == "viewer"


def app_with_users(monkeypatch) -> AppTest:
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))  # no webserver needed for these pages
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["users"] = USERS
    at.run()
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_name").set_value(name)
    at.text_input(key="sign_in_password").set_value(password)
    return at.button[0].click().run()


def test_sign_in_is_required_when_users_are_configured(monkeypatch):
    at = app_with_users(monkeypatch)
    assert at.title[0].value == "RecoMart" and not at.metric  # nothing but the form
    sign_in(at, "olga", "wrong")
    assert "wrong password" in at.error[0].value and not at.metric


def test_viewer_browses_but_cannot_refresh(monkeypatch):
    at = sign_in(app_with_users(monkeypatch), "vic", "view-secret")
    assert at.metric and not at.exception  # the Overview
    assert any("vic (viewer)" in c.value for c in at.sidebar.caption)
    with pytest.raises(ValueError, match="Could not find a navigation page") as found:
        at.switch_page("app_pages/refresh.py")  # not in a viewer's navigation
    assert "recommendations.py" in str(found.value)
    # And the page itself refuses a viewer, should it be reached some other way.
    page = AppTest.from_file(str(PAGES / "refresh.py"), default_timeout=60)
    page.secrets["users"] = USERS
    page.session_state["signed_in_user"] = auth.User("vic", "viewer")
    page.run()
    assert any("Only operators" in e.value for e in page.error) and not page.button


def test_operator_may_refresh(monkeypatch):
    at = sign_in(app_with_users(monkeypatch), "olga", "op-secret")
    at.switch_page("app_pages/refresh.py").run()
    assert at.title[0].value == "Refresh the data and the model"
    assert any(b.label == "Start refresh" for b in at.button)
    at.button(key="sign_out").click().run()
    assert not at.metric and at.text_input(key="sign_in_name")


def test_open_mode_says_so(monkeypatch):
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert any("Open access" in c.value and "127.0.0.1" in c.value for c in at.sidebar.caption)


class TokenProxy:
    """A loopback proxy in front of the webserver that refuses requests without the right token header."""

    def __init__(self, upstream: str, token: str):
        self.port = free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                if self.headers.get("Dagster-Cloud-Api-Token") != token:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = requests.request(
                    self.command,
                    upstream + self.path,
                    data=body or None,
                    timeout=30,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", proxy.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.webserver
def test_token_header_reaches_a_protected_endpoint(live, trained):
    with TokenProxy(live.server.url, "t0ken") as proxy:
        api = DagsterAPI(Connection(port=proxy.port, token="t0ken"))
        assert trained in {r.run_id for r in api.runs()}
        assert api.run_status(trained) == "SUCCESS"  # through the GraphQL client, with the header
        with pytest.raises(DagsterRequestError, match="401.*DAGSTER_TOKEN"):
            DagsterAPI(Connection(port=proxy.port)).runs()
        with pytest.raises(DagsterRequestError):
            DagsterAPI(Connection(port=proxy.port, token="wrong")).run_status(trained)
