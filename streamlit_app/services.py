"""Cached access for the pages: the Dagster API (briefly cached answers) and the served model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from dagster_project import model_store
from dagster_project.recommender import ModelError, RecommenderModel, load_model
from dagster_project.settings import model_path
from streamlit_app.dagster_api import Connection, DagsterAPI, DagsterError, DagsterUnavailable, Run
from streamlit_app.settings import current_connection

QUERY_TTL = 5  # seconds: fresh enough to follow runs, cheap enough for many sessions


@st.cache_resource(show_spinner=False)
def _api_for(connection: Connection) -> DagsterAPI:
    return DagsterAPI(connection)


def api() -> DagsterAPI:
    return _api_for(current_connection())


@st.cache_resource(show_spinner=False)
def submit_lock() -> threading.Lock:
    """One lock for every session of this app server: "is a run under way? if not, start one" is atomic."""
    return threading.Lock()


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def server_info(conn: Connection) -> dict:
    return _api_for(conn).server_info()


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def instance_info(conn: Connection) -> dict:
    return _api_for(conn).instance_info()


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def recent_runs(conn: Connection, limit: int = 100) -> list[Run]:
    return _api_for(conn).runs(limit=limit)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def run_detail(conn: Connection, run_id: str) -> Run:
    return _api_for(conn).run(run_id)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def materializations(conn: Connection, asset: str, limit: int = 50) -> list[dict]:
    return _api_for(conn).materializations(asset, limit)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def latest_materializations(conn: Connection, assets: tuple[str, ...]) -> dict[str, dict | None]:
    return _api_for(conn).latest_materializations(list(assets))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def check_results(conn: Connection) -> list[dict]:
    return _api_for(conn).check_results()


def show_dagster_problem(exc: DagsterError) -> None:
    """The banner for a webserver that is down, restarting, or refusing us."""
    if isinstance(exc, DagsterUnavailable):
        st.error(f"**Dagster is not reachable.** {exc}", icon=":material/cloud_off:")
    else:
        st.error(f"**Dagster refused the request.** {exc}", icon=":material/error:")


@contextmanager
def asking_dagster(stop_page: bool = False) -> Iterator[None]:
    """Page code that asks Dagster: on failure show the banner, then go on (or stop the page)."""
    try:
        yield
    except DagsterError as exc:
        show_dagster_problem(exc)
        if stop_page:
            st.stop()


@st.cache_resource(show_spinner=False)
def _one_blas_thread() -> object:
    """Serving multiplies one customer's row at a time: BLAS threads only wait for each other, and on a
    busy 2-core machine they made a top-10 list 10-25x slower (docs/BENCHMARKS.md). Set once per app."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def _model_at(path: str, mtime_ns: int, size: int) -> RecommenderModel:
    return load_model(path)


def served_model() -> RecommenderModel:
    """The model on disk, cached until the file changes (a new training replaces it atomically).

    A damaged or incompatible file does not take the page down: the newest kept version that loads
    is served instead, and `model_problems()` says why.
    """
    _one_blas_thread()
    path = model_path()
    st.session_state["model_problems"] = []
    try:
        stat = Path(path).stat()
        return _model_at(str(path), stat.st_mtime_ns, stat.st_size)
    except (FileNotFoundError, ModelError):
        model, used, problems = model_store.newest_loadable(path.parent)  # raises ModelError when none loads
        st.session_state["model_problems"] = problems
        return model


def model_problems() -> list[str]:
    return st.session_state.get("model_problems", [])
