"""Safe by default (docs/SECURITY.md): each claim there is tested here or in the module it names.

Sign-in fails closed, roles are checked where actions happen, a model file cannot run code, knobs sent
straight to Dagster are bounded, and clean-up touches only RecoMart's own temporary files.
"""

import hashlib
import shutil
from contextlib import contextmanager

import dagster as dg
import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from dagster_project import model_store
from dagster_project.definitions import defs
from dagster_project.fileio import sha256_of
from dagster_project.recommender import load_model
from streamlit_app import auth
from tests.attacks import LAUNCH_MUTATION, USERS, pickle_era_model
from tests.servers import free_port, wait_for_run
from tests.workspace import APP, PAGES


@contextmanager
def streamlit_option(name: str, value: object):
    """A Streamlit config option as the running server would have it, restored afterwards."""
    previous = st_config.get_option(name)
    st_config.set_option(name, value)
    try:
        yield
    finally:
        st_config.set_option(name, previous)


def app(monkeypatch, secrets: dict | None = None, page: str = str(APP)) -> AppTest:
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))  # nothing listens: these pages need no webserver
    at = AppTest.from_file(page, default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    return at


def stopped_with(at: AppTest, words: str) -> bool:
    """The app showed only a stop page containing `words`: no sign-in form, no page content."""
    return (
        any(words in e.value for e in at.error)
        and not at.text_input
        and not at.metric
        and not any(b.label == "Start refresh" for b in at.button)
    )


# --- sign-in settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secrets, words",
    [
        ({"users": {}}, "has no user"),
        (
            {"users": {"olga": {"password_hash": "pbkdf2_sha256$600000$zz$12", "role": "operator"}}},
            "no valid password_hash",
        ),
        (
            {"users": {"olga": {"password_hash": USERS["olga"]["password_hash"], "role": "admin"}}},
            "use 'viewer' or 'operator'",
        ),
        ({"users": {"olga": "not a table"}}, "must be a table"),
        ({"users": USERS, "auth": {"redirect_uri": "x", "cookie_secret": "y"}}, "keep one of them"),
        ({"auth": {"client_id": "x"}}, "lacks redirect_uri, cookie_secret"),
        ({"users": USERS, "roles": {"operators": "ops@example.com"}}, "must be a list"),
        ({"user": USERS}, "is [users] misspelled?"),
        ({"Users": USERS}, "Unknown section(s) Users"),
    ],
    ids=[
        "empty-users",
        "malformed-hash",
        "unknown-role",
        "entry-not-a-table",
        "two-modes",
        "oidc-incomplete",
        "operators-not-a-list",
        "section-typo",
        "section-case",
    ],
)
def test_unusable_sign_in_settings_stop_the_app(monkeypatch, secrets, words):
    at = app(monkeypatch, secrets)
    at.run()
    assert stopped_with(at, words), [e.value for e in at.error]
    assert "op-secret" not in str([e.value for e in at.error]) and "pbkdf2" not in str([e.value for e in at.error])


def test_unreadable_secrets_file_stops_the_app(monkeypatch, tmp_path):
    broken = tmp_path / "secrets.toml"
    broken.write_text('[users.olga]\npassword_hash = "pbkdf2_sha256$600000$ab\nrole = "operator"\n')  # open quote
    with streamlit_option("secrets.files", [str(broken)]):
        at = app(monkeypatch)
        at.run()
    assert stopped_with(at, "sign-in settings cannot be read"), [e.value for e in at.error]


def test_a_secrets_file_that_is_a_broken_link_stops_the_app(monkeypatch, tmp_path):
    link = tmp_path / "secrets.toml"
    link.symlink_to(tmp_path / "gone.toml")
    with streamlit_option("secrets.files", [str(link)]):
        at = app(monkeypatch)
        at.run()
    assert stopped_with(at, "a broken link"), [e.value for e in at.error]


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.0.2.10", "::"])
def test_no_sign_in_on_a_reachable_address_means_no_app(monkeypatch, address):
    with streamlit_option("server.address", address):
        at = app(monkeypatch)
        at.run()
        refresh = app(monkeypatch, page=str(PAGES / "refresh.py"))  # the page itself, reached any other way
        refresh.run()
    assert stopped_with(at, "can be reached from other machines"), [e.value for e in at.error]
    assert not any(b.label == "Start refresh" for b in refresh.button)
    assert any("can be reached from other machines" in e.value for e in refresh.error)


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "unix:///tmp/recomart.sock"])
def test_open_mode_on_loopback(monkeypatch, address):
    with streamlit_option("server.address", address):
        at = app(monkeypatch)
        at.run()
    assert any("Open access" in c.value for c in at.sidebar.caption)


# --- sign-in cost and slow-down ------------------------------------------------------------------------


def test_known_and_unknown_names_cost_one_hash_each(monkeypatch):
    """Equal cost by construction: each attempt computes exactly one PBKDF2 with the same iterations."""
    calls = []
    real = hashlib.pbkdf2_hmac

    def counted(name, password, salt, iterations, *rest):
        calls.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    secrets = {"users": {"olga": {"password_hash": auth.hash_password("op-secret"), "role": "operator"}}}
    for name, password in [("olga", "wrong"), ("mallory", "wrong"), ("olga", "op-secret"), ("", "")]:
        calls.clear()
        auth.check_credentials(secrets, name, password)
        assert calls == [auth.ITERATIONS], (name, calls)


def test_throttle_slows_down_repeated_failures():
    throttle = auth.Throttle(free=3, cap=60)
    for _i in range(3):
        assert throttle.wait_seconds("olga", now=100.0) == 0
        throttle.failed("olga", now=100.0)
    assert throttle.wait_seconds("olga", now=100.0) == 2.0  # the 4th attempt waits
    throttle.failed("olga", now=102.0)
    assert throttle.wait_seconds("olga", now=102.0) == 4.0
    assert throttle.wait_seconds("vic", now=102.0) == 0  # per name
    for _ in range(20):
        throttle.failed("olga", now=200.0)
    assert throttle.wait_seconds("olga", now=200.0) == 60  # capped
    throttle.succeeded("olga")
    assert throttle.wait_seconds("olga", now=200.0) == 0


def test_simultaneous_attempts_cannot_race_past_the_slow_down():
    """Checking and counting happen under one lock: of 12 attempts at once, only the free ones go ahead."""
    from concurrent.futures import ThreadPoolExecutor

    throttle = auth.Throttle(free=3, cap=60)
    with ThreadPoolExecutor(12) as pool:
        waits = list(pool.map(lambda _: throttle.begin("alice", now=100.0), range(12)))
    assert waits.count(0.0) == 3 and all(w > 0 for w in waits if w)


def test_unknown_names_cost_what_the_configured_hashes_cost(monkeypatch):
    calls = []
    real = hashlib.pbkdf2_hmac
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", lambda *a: calls.append(a[3]) or real(*a))
    auth.check_credentials({"users": USERS}, "mallory", "x")  # USERS' hashes use 1,000 iterations
    assert calls == [1000]
    mixed = {"users": {**USERS, "ann": {"password_hash": auth.hash_password("a", iterations=2000), "role": "viewer"}}}
    assert any("different iteration counts" in p for p in auth.configuration_problems(mixed))


def test_sign_in_form_refuses_attempts_while_slowed_down(monkeypatch):
    at = app(monkeypatch, {"users": USERS})
    at.run()
    name = f"vic-{free_port()}"  # the per-name record is shared by the app server: a name of this test's own
    for _ in range(3):
        at.text_input(key="sign_in_name").set_value(name)
        at.text_input(key="sign_in_password").set_value("wrong")
        at.button[0].click().run()
        assert "wrong password" in at.error[0].value
    at.text_input(key="sign_in_password").set_value("still wrong")
    at.button[0].click().run()
    assert "Too many failed sign-ins" in at.error[0].value and not at.metric


# --- roles where the action happens --------------------------------------------------------------------


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.run()
    at.text_input(key="sign_in_name").set_value(name)
    at.text_input(key="sign_in_password").set_value(password)
    return at.button[0].click().run()


@pytest.mark.webserver
def test_viewer_cannot_roll_back_by_any_path(app_env, trained, tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(app_env.workspace.models, models)
    (models / "collaborative_filtering.pkl").write_bytes(b"damaged")  # so that serving a version is possible
    monkeypatch.setenv("RECOMART_MODELS_DIR", str(models))
    served = models / "collaborative_filtering.pkl"
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["users"] = USERS
    sign_in(at, "vic", "view-secret")
    at.switch_page("app_pages/model_history.py").run()
    version = load_model(model_store.list_versions(models)[0]).card.version
    at.selectbox(key="version_choice").set_value(version).run()  # viewers may compare versions
    button = at.button(key="serve_version")
    assert button.disabled
    button.proto.disabled = False  # a forged widget event: a client sends the click the page disabled
    button.click().run()
    assert served.read_bytes() == b"damaged"

    # An operator demoted after the page was drawn: the click finds the role in force and refuses.
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["users"] = USERS
    sign_in(at, "olga", "op-secret")
    at.switch_page("app_pages/model_history.py").run()
    at.selectbox(key="version_choice").set_value(version).run()
    assert not at.button(key="serve_version").disabled
    at.secrets["users"] = {**USERS, "olga": {**USERS["olga"], "role": "viewer"}}
    at.button(key="serve_version").click().run()
    assert served.read_bytes() == b"damaged"
    assert at.button(key="serve_version").disabled and any("olga (viewer)" in c.value for c in at.sidebar.caption)


@pytest.mark.webserver
def test_signed_out_or_demoted_users_lose_operator_actions(app_env, monkeypatch):
    """The role is read from the settings in force when acting, not remembered from sign-in."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["users"] = USERS
    sign_in(at, "olga", "op-secret")
    at.switch_page("app_pages/refresh.py").run()
    assert any(b.label == "Start refresh" for b in at.button)
    at.secrets["users"] = {**USERS, "olga": {**USERS["olga"], "role": "viewer"}}
    start = next(b for b in at.button if b.label == "Start refresh")
    start.click().run()
    assert not any(b.label == "Start refresh" for b in at.button)  # the page is gone from the navigation
    assert not app_env.api.active_runs() and "tracked_run" not in at.session_state


# --- model files ---------------------------------------------------------------------------------------


@pytest.mark.webserver
def test_planted_model_files_never_run_and_the_next_refresh_replaces_them(app_env, trained, tmp_path):
    ws = app_env.workspace
    marker = tmp_path / "ran"
    planted = pickle_era_model(marker)
    served = ws.model_file
    newest = ws.models / "versions" / "collaborative_filtering-99991231T235959Z-planted.pkl"
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(planted)
    link = ws.models / "versions" / "collaborative_filtering-99991231T235960Z-link.pkl"
    original = served.read_bytes()
    try:
        served.write_bytes(planted)
        newest.write_bytes(planted)
        link.symlink_to(outside)
        from dagster_project import model_store

        assert link not in model_store.list_versions(ws.models)  # a link is never a kept version
        for page in ("overview", "recommendations", "model_history", "runs", "data_quality"):
            at = AppTest.from_file(str(APP), default_timeout=60)
            at.run()
            at.switch_page(f"app_pages/{page}.py").run()
            assert not at.exception, (page, at.exception)
        with pytest.raises(Exception, match="earlier RecoMart version"):
            load_model(served)
        assert not marker.exists()

        run_id = app_env.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "tests"})
        assert wait_for_run(app_env.api, run_id) == "SUCCESS"
        assert load_model(served).card.run_id == run_id
        assert not marker.exists() and outside.read_bytes() == planted  # never followed, never deleted
    finally:
        for path in (newest, link):
            path.unlink(missing_ok=True)
        if not served.exists() or served.read_bytes() == planted:
            served.write_bytes(original)


# --- knobs sent straight to Dagster --------------------------------------------------------------------


@pytest.mark.webserver
def test_out_of_range_knobs_sent_straight_to_dagster_are_refused(live, trained):
    from dagster_project.defs.run_config import config_problems

    before = sha256_of(live.workspace.model_file)
    raw_before = len(live.api.materializations("raw_users", 100))
    bad = {
        "ops": {
            "validation_report": {"config": {"min_quality_score": -1e9}},
            "collaborative_filtering_model": {"config": {"test_share": 0.9, "factors": 100000}},
        }
    }
    assert len(config_problems(bad)) == 3
    run_id = live.api.submit("complete_pipeline_job", bad, {"recomart/launched_by": "tests"})
    assert wait_for_run(live.api, run_id) == "FAILURE"
    message = live.api.failure_message(run_id)
    assert "out of range" in message and "min_quality_score" in message and "test_share" in message
    assert sha256_of(live.workspace.model_file) == before
    assert len(live.api.materializations("raw_users", 100)) == raw_before  # nothing was read or written

    from streamlit_app.dagster_api import DagsterRequestError

    with pytest.raises(DagsterRequestError, match="weighting"):  # a wrong choice is refused at launch
        live.api.submit(
            "complete_pipeline_job", {"ops": {"collaborative_filtering_model": {"config": {"weighting": "anything"}}}}
        )


def test_config_classes_are_the_single_source_for_the_app():
    from dagster_project.defs.run_config import ModelConfig, ValidationConfig
    from streamlit_app.run_requests import RefreshOptions, limits

    assert limits("test_share") == (0.05, 0.5) and limits("min_quality_score") == (0.0, 100.0)
    assert RefreshOptions().test_share == ModelConfig().test_share
    assert RefreshOptions().min_quality_score == ValidationConfig().min_quality_score
    assert RefreshOptions(test_share=0.6).problems() == [
        "The share of data held out for measuring must be between 5% and 50%."
    ]


# --- clean-up ------------------------------------------------------------------------------------------


def test_clean_up_keeps_other_programs_temporary_files(workspace):
    foreign = [
        workspace.storage / ".x.tmp",
        workspace.models / ".session.tmp",
        workspace.models / ".collaborative_filtering.pkl.abc.tmp",
    ]
    ours = workspace.models / ".recomart-tmp-collaborative_filtering.pkl.abc.tmp"
    for path in [*foreign, ours]:
        path.write_text("keep me")
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("ingestion_job").execute_in_process(
            run_config=workspace.run_config(), instance=instance, raise_on_error=False
        )
    assert result.success
    assert all(p.read_text() == "keep me" for p in foreign)
    assert not ours.exists()


def test_patterns_that_could_run_for_hours_are_refused():
    from dagster_project.defs.run_config import config_problems

    for pattern in ("(?=((\\w+ ?)*)*!)", "(a)\\1", "(?<=x)postage"):
        problems = config_problems({"ops": {"prepared_data": {"config": {"non_product_pattern": pattern}}}})
        assert problems and "linear time" in problems[0], pattern
    assert config_problems({"ops": {"prepared_data": {"config": {"non_product_pattern": "(?i)postage|fee"}}}}) == []


def test_names_from_the_data_never_render_as_links():
    from streamlit_app.tables import plain

    shown = plain("[Verify your account](https://evil.example/verify) ![x](https://evil.example/t.png)")
    assert "](" not in shown and "![" not in shown
    assert plain("Ann-Marie O'Neil, no. 3") == "Ann-Marie O'Neil, no. 3"  # an ordinary name is left alone
    assert "\\:" in plain("https://evil.example")  # no bare link either


@pytest.mark.webserver
def test_the_launchers_webserver_refuses_what_another_page_could_send(live, trained):
    """The webserver as the launchers and these tests start it (dagster_project.guarded_webserver)."""
    import requests

    graphql = f"{live.server.url}/graphql"
    before = len(live.api.runs(limit=100))
    attempts = {
        "GET with a query": requests.get(graphql, params={"query": LAUNCH_MUTATION}, timeout=10),
        "form post": requests.post(graphql, data={"query": LAUNCH_MUTATION}, timeout=10),
        "other origin": requests.post(
            graphql, json={"query": LAUNCH_MUTATION}, headers={"Origin": "https://evil.example"}, timeout=10
        ),
        "rebound name": requests.post(
            graphql, json={"query": LAUNCH_MUTATION}, headers={"Host": "evil.example:3000"}, timeout=10
        ),
    }
    assert {name: answer.status_code for name, answer in attempts.items()} == dict.fromkeys(attempts, 403)
    assert requests.post(graphql, json={"query": "{ version }"}, timeout=10).json()["data"]["version"]
    assert requests.get(f"{live.server.url}/server_info", timeout=10).ok  # the UI's own requests still work
    assert len(live.api.runs(limit=100)) == before
