"""Sign-in for the app's pages (the rules are in auth.py; this is the Streamlit side)."""

from __future__ import annotations

import streamlit as st

from streamlit_app import auth
from streamlit_app.settings import read_secrets

SESSION_KEY = "signed_in_user"


def signed_in_user() -> auth.User:
    """The user of this session; shows the sign-in form and stops the page until there is one."""
    secrets = read_secrets()
    how = auth.mode(secrets)
    if how == "open":
        st.session_state[SESSION_KEY] = auth.OPEN_USER
        st.sidebar.caption(":material/lock_open: Open access: no sign-in is configured, so keep the app on "
                           "127.0.0.1 (add users to `.streamlit/secrets.toml` to require one).")
        return auth.OPEN_USER
    if how == "oidc":
        if not st.user.is_logged_in:
            st.title("RecoMart")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        user = auth.User(str(st.user.get("email") or st.user.get("name")),
                         auth.role_for_email(secrets, st.user.get("email")))
        st.session_state[SESSION_KEY] = user
        return user
    if SESSION_KEY in st.session_state and st.session_state[SESSION_KEY] is not auth.OPEN_USER:
        return st.session_state[SESSION_KEY]
    st.title("RecoMart")
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user = auth.check_credentials(secrets, name, password)
        if user is None:
            st.error("Unknown user name or wrong password.")
        else:
            st.session_state[SESSION_KEY] = user
            st.rerun()
    st.stop()


def current_user() -> auth.User:
    return st.session_state.get(SESSION_KEY, auth.OPEN_USER)


def sidebar(user: auth.User) -> None:
    if user is auth.OPEN_USER:
        return
    st.sidebar.caption(f":material/person: {user.name} ({user.role})")
    if st.sidebar.button("Sign out", key="sign_out"):
        if auth.mode(read_secrets()) == "oidc":
            st.logout()
        st.session_state.pop(SESSION_KEY, None)
        st.rerun()


def require_operator() -> auth.User:
    user = current_user()
    if not user.is_operator:
        st.error("Only operators may start refreshes or change the served model.", icon=":material/block:")
        st.stop()
    return user
