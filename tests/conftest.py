"""Shared fixtures: sample data in temporary folders, a temporary Dagster instance, live servers, a browser.

Plain helpers (paths, workspaces) are in tests/workspace.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagster_project.sample_data import generate
from tests.workspace import ROOT, LiveDagster, Workspace, make_workspace

os.environ.setdefault("RECOMART_AUTOMATION", "off")
SERVER_FIXTURES = {"live", "trained", "app_env", "verdict_live"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark exactly the tests that need the live webserver and daemon, so `-m "not webserver"` keeps the rest."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.webserver)  # no schedule or sensor runs during tests


@pytest.fixture(scope="session")
def sample_source(tmp_path_factory) -> Path:
    """The sample dataset, made once by the generator with the shipped data's settings."""
    out = tmp_path_factory.mktemp("sample")
    generate(out)
    return out


@pytest.fixture(scope="session")
def sample_model(sample_source: Path):
    """A model trained on the sample data with fixed settings (no tuning: quick), no Dagster involved."""
    from dagster_project.model_card import ModelParams
    from tests.workspace import train_on

    return train_on(sample_source, ModelParams(factors=16, shrinkage=1.0, weighting="log"))


@pytest.fixture
def workspace(tmp_path: Path, sample_source: Path) -> Workspace:
    return make_workspace(tmp_path, sample_source)


@pytest.fixture
def instance():
    import dagster as dg

    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live(request, tmp_path_factory, sample_source) -> LiveDagster:
    """A real Dagster webserver + daemon on a free loopback port, over temporary folders and DAGSTER_HOME.

    Twice: on the local SQLite instance (dagster.yaml) and on a throwaway PostgreSQL server
    (deploy/postgres/dagster.yaml), when PostgreSQL's server binaries are installed.
    """
    from contextlib import ExitStack

    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.postgres import postgres_server, server_bin
    from tests.servers import dagster_server

    root = tmp_path_factory.mktemp(f"live-{request.param}")
    ws = make_workspace(root, sample_source)
    with ExitStack() as stack:
        env, instance_yaml = ws.env(), ROOT / "dagster.yaml"
        if request.param == "postgres":
            if server_bin() is None:
                pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs them)")
            env = {**env, **stack.enter_context(postgres_server())}
            instance_yaml = ROOT / "deploy" / "postgres" / "dagster.yaml"
        server = stack.enter_context(dagster_server(root / "dagster_home", env, instance_yaml))
        yield LiveDagster(
            server, ws, Connection(port=server.port), DagsterAPI(Connection(port=server.port)), request.param
        )


@pytest.fixture(scope="session")
def trained(live: LiveDagster) -> str:
    """The live instance after one complete pipeline run submitted through the GraphQL client."""
    from tests.servers import wait_for_run

    run_id = live.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "app", "recomart/user": "tests"})
    status = wait_for_run(live.api, run_id)
    assert status == "SUCCESS", (live.server.home / "daemon.log").read_text()[-3000:]
    return run_id


@pytest.fixture
def app_env(live: LiveDagster, monkeypatch) -> LiveDagster:
    """Point the app (AppTest runs it in this process) at the live webserver and the live folders."""
    for key, value in live.app_env().items():
        monkeypatch.setenv(key, value)
    return live


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Headless Chromium (Debian's, driven by Playwright); the helpers that drive the app are in tests/browser.py."""
    from tests.browser import CHROMIUM, launch

    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (./run_pipeline.sh test installs it when run as root)")
    monkeypatch.setenv("HOME", str(tmp_path))  # chromium writes under $HOME
    with launch() as browser:
        yield browser


@pytest.fixture(scope="session")
def verdict_live(tmp_path_factory, sample_source) -> LiveDagster:
    """A live webserver + daemon of its own (SQLite), trained twice so a kept version can be rolled back to.

    The Overview's tests change what is served and make refreshes fail; here that never touches `live`.
    """
    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.overview_states import refresh
    from tests.servers import dagster_server

    root = tmp_path_factory.mktemp("verdict")
    ws = make_workspace(root, sample_source)
    with dagster_server(root / "dagster_home", ws.env()) as server:
        live = LiveDagster(server, ws, Connection(port=server.port), DagsterAPI(Connection(port=server.port)))
        for _ in range(2):
            assert refresh(live) == "SUCCESS", (server.home / "daemon.log").read_text()[-3000:]
        yield live


@pytest.fixture
def verdict_env(verdict_live: LiveDagster, monkeypatch) -> LiveDagster:
    """Point the app (AppTest runs it in this process) at `verdict_live`."""
    for key, value in verdict_live.app_env().items():
        monkeypatch.setenv(key, value)
    return verdict_live
