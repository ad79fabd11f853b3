"""Cached access for the pages: the Dagster API (briefly cached answers) and the served model."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from dagster_project import model_store
from dagster_project.model_card import ModelCard
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


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def failure_message(conn: Connection, run_id: str) -> str | None:
    return _api_for(conn).failure_message(run_id)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def automations(conn: Connection) -> dict:
    """The schedule and the sensors with their state (cleared after a switch, so the page shows the new state)."""
    return _api_for(conn).automations()


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def freshness(conn: Connection) -> dict:
    """Dagster's own freshness verdict per watched asset (the model and the raw transactions)."""
    return _api_for(conn).freshness()


# Every cached answer of the webserver: forgotten at once when it stops answering (see asking_dagster).
ANSWERS = (
    server_info,
    instance_info,
    recent_runs,
    run_detail,
    materializations,
    latest_materializations,
    check_results,
    failure_message,
    automations,
    freshness,
)


def _answers_up(conn: Connection | None = None) -> bool:
    """Ask the webserver now, never from the cache; when it does not answer, forget every cached answer.

    Answers are cached for a few seconds; without this a page drawn just after the service stopped
    would show it as running from those answers.
    """
    try:
        _api_for(conn or current_connection()).server_info()
        return True
    except DagsterError:
        for cached in ANSWERS:
            cached.clear()
        return False


@st.cache_resource(max_entries=8, show_spinner=False)
def _card_at(path: str, mtime_ns: int) -> ModelCard:
    return load_model(path).card


def card_of(path: Path) -> ModelCard | None:
    """A kept model version's card (None when the file cannot be used), cached until the file changes."""
    try:
        return _card_at(str(path), Path(path).stat().st_mtime_ns)
    except (OSError, ModelError):
        return None


PIPELINE_DOWN = (
    "**The pipeline service is not answering.** Refreshes, run history and the latest check results are "
    "unavailable for now; recommendations still work from the last model. This page comes back by itself "
    "when the service answers again."
)
PIPELINE_REFUSED = (
    "**The pipeline service refused the app's request.** Refreshes and run history are unavailable until "
    "that is fixed; recommendations still work from the last model. Send the details below to whoever runs RecoMart."
)
RECHECK_SECONDS = 3  # how often a page that met an outage asks again whether the pipeline is back

# The script runs that have shown the outage banner: one banner per page run, however many calls failed.
_BANNER_SHOWN: weakref.WeakSet = weakref.WeakSet()


def _this_run() -> object | None:
    """An object that lives exactly as long as the current script run (Streamlit makes a new one per run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return getattr(ctx, "parallel_coordinator", None) if ctx is not None else None


def _in_fragment() -> bool:
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

        return ThreadState.get().fragment_id is not None
    except Exception:  # an internal that moved: assume a full run, the common case
        return False


def pipeline_up(conn: Connection | None = None) -> bool:
    """Whether the Dagster webserver answers now (asked, not cached): disable actions that need it when not."""
    return _answers_up(conn)


def show_dagster_problem(exc: DagsterError) -> None:
    """The outage banner in plain words, the engineer's detail in an expander; once per page run.

    A page that met the outage also re-checks every few seconds and reruns itself once the webserver
    answers again, so nobody has to change page to see it recover.
    """
    run = _this_run()
    if run is not None:
        if run in _BANNER_SHOWN:
            return
        _BANNER_SHOWN.add(run)
    down = isinstance(exc, DagsterUnavailable)
    st.error(PIPELINE_DOWN if down else PIPELINE_REFUSED, icon=":material/cloud_off:" if down else ":material/error:")
    detail = str(exc)
    if "run_pipeline.sh" not in detail:
        detail += (
            "\n\nStart the pipeline service with `./run_pipeline.sh ui` (or `./run_pipeline.sh up` for the app "
            "and the pipeline together); the app looks for it at `DAGSTER_HOST` / `DAGSTER_PORT`."
        )
    with st.expander("Details for the engineer"):
        st.markdown(detail)
    if down and not _in_fragment():
        _rerun_when_back()


def _fragment_rerun() -> bool:
    """Whether this script run is a fragment's own rerun (not the page's full run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return bool(getattr(ctx, "fragment_ids_this_run", None))


@st.fragment(run_every=RECHECK_SECONDS)
def _rerun_when_back() -> None:
    """Ask the webserver again every few seconds; once it answers, rerun the whole page."""
    if not _fragment_rerun():
        return  # the page itself just found it down: the first check waits for the next tick
    try:
        api().server_info()
    except DagsterError:
        return
    for cached in ANSWERS:
        cached.clear()
    st.rerun()


@contextmanager
def asking_dagster(stop_page: bool = False) -> Iterator[None]:
    """Page code that asks Dagster: on failure show the banner (once per page run), then go on or stop."""
    _answers_up()  # a stopped service must fail the calls below, not answer them from the cache
    try:
        yield
    except DagsterError as exc:
        show_dagster_problem(exc)
        if stop_page:
            st.stop()


def _one_blas_thread() -> None:
    """Serving multiplies one customer's row at a time: BLAS threads only wait for each other, and on a
    busy 2-core machine they made a top-10 list 10-25x slower (docs/BENCHMARKS.md). Checked on every model
    use (about 4 ms), not once: a BLAS library loaded later (scipy's own, with scikit-learn) starts with
    as many threads as cores."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if any(pool["user_api"] == "blas" and pool["num_threads"] > 1 for pool in threadpool_info()):
        threadpool_limits(limits=1, user_api="blas")


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
