"""Where the app finds the Dagster webserver and the model: environment first, then secrets, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT
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
    return Connection(
        host=pick("DAGSTER_HOST", "host", "127.0.0.1"),
        port=port_number,
        use_https=(pick("DAGSTER_USE_HTTPS", "use_https", "false") or "").lower() in TRUE,
        token=pick("DAGSTER_TOKEN", "token", None),
    )


class SecretsUnreadable(RuntimeError):
    """A secrets file exists but cannot be read: the app must stop rather than run without it."""


def read_secrets() -> Mapping[str, object]:
    """Streamlit's secrets; empty only when no secrets file exists at all.

    A file that exists but cannot be parsed raises `SecretsUnreadable` (sign-in must never silently
    turn into "no sign-in configured").
    """
    import streamlit as st
    from streamlit import config
    from streamlit.errors import StreamlitSecretNotFoundError

    own = PROJECT_ROOT / ".streamlit" / "secrets.toml"
    for configured in [own, *(Path(p).expanduser() for p in config.get_option("secrets.files"))]:
        if os.path.lexists(configured) and not (configured.is_file() or configured.is_dir()):
            raise SecretsUnreadable(f"{configured} exists but cannot be read (a broken link?).")
    read = {Path(p).expanduser().resolve() for p in config.get_option("secrets.files")}
    if own.is_file() and own.resolve() not in read and not config.is_manually_set("secrets.files"):
        raise SecretsUnreadable(
            f"The app was started from {Path.cwd()}, so Streamlit does not read this project's "
            f"sign-in settings in {own}. Start it from the project folder "
            f"(`./run_pipeline.sh app`)."
        )
    try:
        return {k: st.secrets[k] for k in st.secrets}
    except StreamlitSecretNotFoundError as exc:
        if getattr(exc, "error_id", None) == "no-secrets-found":
            return {}
        raise SecretsUnreadable(str(exc)) from None
    except Exception as exc:  # anything else Streamlit meets while reading them: fail closed
        raise SecretsUnreadable(f"{type(exc).__name__}: {exc}") from None


def current_connection() -> Connection:
    return connection_from(os.environ, read_secrets())
