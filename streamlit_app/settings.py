"""Where the app finds the Dagster webserver and the model: environment first, then secrets, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster_project.settings import model_path
from streamlit_app.dagster_api import Connection

TRUE = ("1", "true", "yes", "on")


def connection_from(env: Mapping[str, str], secrets: Mapping[str, object]) -> Connection:
    """DAGSTER_HOST, DAGSTER_PORT, DAGSTER_USE_HTTPS, DAGSTER_TOKEN (env beats secrets.toml's [dagster])."""
    section = secrets.get("dagster", {}) if isinstance(secrets.get("dagster", {}), Mapping) else {}

    def pick(name: str, key: str, default: str | None) -> str | None:
        value = env.get(name)
        if value in (None, ""):
            value = section.get(key)
        return default if value in (None, "") else str(value)

    port = pick("DAGSTER_PORT", "port", "3000")
    try:
        port_number = int(port)
    except ValueError as exc:
        raise ValueError(f"DAGSTER_PORT must be a port number, not {port!r}") from exc
    return Connection(host=pick("DAGSTER_HOST", "host", "127.0.0.1"), port=port_number,
                      use_https=(pick("DAGSTER_USE_HTTPS", "use_https", "false") or "").lower() in TRUE,
                      token=pick("DAGSTER_TOKEN", "token", None))


def served_model_path() -> Path:
    return model_path()


def read_secrets() -> Mapping[str, object]:
    """Streamlit's secrets, or nothing when no secrets.toml exists."""
    import streamlit as st

    try:
        return {k: st.secrets[k] for k in st.secrets}
    except Exception:  # no secrets file: Streamlit raises on first access
        return {}


def current_connection() -> Connection:
    return connection_from(os.environ, read_secrets())
