"""Sign-in for the app's pages (the rules are in auth.py; this is the Streamlit side).

Fails closed: unreadable secrets, unusable sign-in settings, or no sign-in on a server that other
machines can reach stop the app with a page that says what to fix, and nothing else is served.
"""

from __future__ import annotations

import streamlit as st

from dagster_project import loopback
from streamlit_app import auth
from streamlit_app.settings import SecretsUnreadable, read_secrets

SESSION_KEY = "signed_in_user"
FAILED_KEY = "sign_in_failures"


@st.cache_resource(show_spinner=False)
def _name_throttle() -> auth.Throttle:
    """Failures per user name, shared by every session of this app server."""
    return auth.Throttle()


def _refuse(title: str, body: str) -> None:
    """A stop page: the verdict in plain words, then what whoever runs RecoMart should do."""
    st.title("RecoMart")
    st.error(
        f"**{title}**\n\nIf someone else runs RecoMart for you, send them this page. If you run it:\n\n{body}",
        icon=":material/lock:",
    )
    st.stop()


def _secrets_in_force() -> dict:
    """The secrets, or a stop page when they exist but cannot be used."""
    try:
        secrets = read_secrets()
    except SecretsUnreadable as exc:
        _refuse(
            "RecoMart is closed: its sign-in settings cannot be read.",
            f"{exc}\n\nFix `.streamlit/secrets.toml` (see `.streamlit/secrets.toml.example`) and reload.",
        )
    problems = auth.configuration_problems(secrets)
    if problems:
        _refuse(
            "RecoMart is closed: its sign-in settings cannot be used.",
            "\n".join(f"- {p}" for p in problems) + "\n\nFix `.streamlit/secrets.toml` and reload.",
        )
    return secrets


def _open_mode_allowed() -> bool:
    """Open access only while this server listens on loopback and the visitor is on this machine.

    The page must also have been asked for by a loopback name, from a page of this app: a web page
    elsewhere (DNS rebinding, another local port) never gets an open session.
    """
    visitor = st.context.ip_address  # None for visitors on localhost (and when Streamlit cannot tell)
    remote = isinstance(visitor, str) and not loopback.is_loopback(visitor)
    headers = st.context.headers
    host, origin = ((v if isinstance(v, str) else None) for v in (headers.get("Host"), headers.get("Origin")))
    return (
        loopback.is_loopback(st.get_option("server.address"))
        and not remote
        and loopback.from_own_loopback_page(host, origin)
    )


def signed_in_user() -> auth.User:
    """The user of this session, checked against the settings in force on every call.

    Shows the sign-in form (or a stop page) and stops the script until there is a user.
    """
    secrets = _secrets_in_force()
    how = auth.mode(secrets)
    if how == "open":
        if not _open_mode_allowed():
            _refuse(
                "RecoMart is closed: it can be reached from other machines, and no sign-in is set up.",
                "Add users to `.streamlit/secrets.toml` (a `[users.NAME]` entry with a `password_hash` made by "
                "`python -m streamlit_app.auth`, and a `role`), or serve the app on 127.0.0.1 only "
                "(start it from the project folder with `./run_pipeline.sh app`).",
            )
        st.session_state[SESSION_KEY] = auth.OPEN_USER
        return auth.OPEN_USER
    if how == "oidc":
        if not st.user.is_logged_in:
            st.title("RecoMart")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        email = st.user.get("email")
        user = auth.User(
            str(email or st.user.get("name")),
            auth.role_for_email(secrets, email, st.user.get("email_verified") is True),
        )
        st.session_state[SESSION_KEY] = user
        return user
    user = st.session_state.get(SESSION_KEY)
    if isinstance(user, auth.User) and user is not auth.OPEN_USER:
        role = auth.role_of(secrets, user.name)
        if role is not None:
            if role != user.role:
                user = st.session_state[SESSION_KEY] = auth.User(user.name, role)
            return user
        st.session_state.pop(SESSION_KEY, None)  # removed from the settings: signed out
    _sign_in_form(secrets)
    raise AssertionError("unreachable: the form stops the script")


def _sign_in_form(secrets: dict) -> None:
    st.title("RecoMart")
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        names, session = _name_throttle(), st.session_state.setdefault(FAILED_KEY, auth.Throttle())
        key = name.strip().lower()
        wait = names.begin(key) or session.begin("session")  # counted before the hash: no racing past it
        if wait > 0:
            st.error(f"Too many failed sign-ins. Try again in {wait:.0f} seconds.", icon=":material/timer:")
            st.stop()
        user = auth.check_credentials(secrets, name, password)
        if user is None:
            st.error("Unknown user name or wrong password.")
        else:
            names.succeeded(key)
            session.succeeded("session")
            st.session_state[SESSION_KEY] = user
            st.rerun()
    st.stop()


def sidebar(user: auth.User) -> None:
    if user is auth.OPEN_USER:
        st.sidebar.caption(
            ":material/lock_open: Open access: no sign-in is configured, so this app answers on "
            "this computer only, at 127.0.0.1 (add users to `.streamlit/secrets.toml` to share it)."
        )
        return
    st.sidebar.caption(f":material/person: {user.name} ({user.role})")
    if st.sidebar.button("Sign out", key="sign_out"):
        st.session_state.pop(SESSION_KEY, None)
        if auth.mode(read_secrets()) == "oidc":
            st.logout()
        st.rerun()


def current_user() -> auth.User:
    """The signed-in user, re-checked against the settings in force (stops the page when there is none)."""
    return signed_in_user()


def require_operator() -> auth.User:
    """Call where an operator-only action happens: the role is checked then, on the server."""
    user = signed_in_user()
    if not user.is_operator:
        st.error("Only operators may start refreshes or change the served model.", icon=":material/block:")
        st.stop()
    return user
