"""The app keeps answering many sessions at once (a bounded version of bench/app_load.py)."""

import pytest

from bench.app_load import run_load
from tests.servers import streamlit_server

pytestmark = pytest.mark.webserver


def test_twenty_sessions_at_once(live, trained, tmp_path):
    env = {**live.workspace.env(), "DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(live.server.port)}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        result = run_load(url, sessions=20, requests=4)
    assert result.errors == []
    assert len(result.latencies_ms) == 80


def test_the_load_test_sees_errors(live, tmp_path):
    from tests.servers import free_port

    env = {**live.workspace.env(), "DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(free_port())}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        result = run_load(url, sessions=2, requests=2)
    assert any("error banner" in e and "not answering" in e for e in result.errors)
