"""Refresh: start the pipeline, then follow the run step by step until it ends."""

import streamlit as st

from streamlit_app import access, services, tables
from streamlit_app.dagster_api import ACTIVE_STATUSES, FINISHED_STATUSES, JOBS, DagsterError
from streamlit_app.run_requests import RefreshOptions, build_run_config, limits, run_tags
from streamlit_app.settings import current_connection

user = access.require_operator()
st.title("Refresh the data and the model")
conn = current_connection()
api = services.api()

job = st.radio("What to run", list(JOBS), format_func=JOBS.get, horizontal=False)
with st.expander("Options", expanded=False):
    defaults = RefreshOptions()
    low, high = limits("min_quality_score")
    threshold = st.number_input(
        f"Minimum quality score to train ({low:g}-{high:g})",
        min_value=low,
        max_value=high,
        value=float(defaults.min_quality_score),
        step=1.0,
        help="Below this score the run stops before training; the current model stays in place.",
        disabled=job == "ingestion_job",
    )
    low, high = limits("test_share")
    test_share = st.slider(
        "Share of the latest purchases held out to measure the model",
        low,
        high,
        float(defaults.test_share),
        0.05,
        disabled=job == "ingestion_job",
    )
    auto_tune = st.checkbox(
        "Tune the model automatically", value=bool(defaults.auto_tune), disabled=job == "ingestion_job"
    )
options = RefreshOptions(threshold, test_share, auto_tune)

if st.button("Start refresh", type="primary", icon=":material/play_arrow:"):
    user = access.require_operator()  # the role at the moment of acting, not when the page was drawn
    with services.asking_dagster():
        try:
            with services.submit_lock():
                under_way = api.active_runs()
                if not under_way:
                    run_id = api.submit(job, build_run_config(job, options), run_tags(user.name))
            if under_way:
                st.session_state["tracked_run"] = under_way[0].run_id
                st.info(
                    f"A refresh is already under way ({under_way[0].job_name}, {under_way[0].status}): "
                    f"following it instead of starting another.",
                    icon=":material/hourglass_top:",
                )
            else:
                st.session_state["tracked_run"] = run_id
                st.toast(f"Run {run_id[:8]} submitted")
        except ValueError as exc:
            st.error(str(exc))

if "tracked_run" not in st.session_state:  # someone else's refresh may be running
    with services.asking_dagster():
        under_way = api.active_runs()
        if under_way:
            st.session_state["tracked_run"] = under_way[0].run_id


def show_run(run_id: str) -> str | None:
    try:
        run = api.run(run_id)
    except DagsterError as exc:
        services.show_dagster_problem(exc)
        st.caption("Retrying while the webserver comes back...")
        return None
    status = run.status
    st.subheader(f"Run `{run_id}`")
    st.markdown(f"**{run.job_name}**, launched by {run.launched_by}. [Open in the Dagster UI]({conn.run_url(run_id)})")
    steps = tables.steps_frame(run)
    done = int(steps["status"].isin(["SUCCESS", "FAILURE", "SKIPPED"]).sum()) if len(steps) else 0
    total = max(len(steps), 1)
    if status in ACTIVE_STATUSES:
        st.progress(done / total if status == "STARTED" else 0.0, text=f"{status}: {done} of {len(steps)} steps done")
    elif status == "SUCCESS":
        st.success(f"Run succeeded in {run.duration:.1f} s.", icon=":material/check_circle:")
    else:
        st.error(f"Run ended with status {status}.", icon=":material/error:")
        try:
            message = api.failure_message(run_id)
        except DagsterError:
            message = None
        if message:
            st.code(message, language=None)
    if len(steps):
        st.dataframe(steps, hide_index=True, width="stretch")
    return status


tracked = st.session_state.get("tracked_run")
if tracked:

    @st.fragment(run_every=2)
    def follow() -> None:
        status = show_run(tracked)
        if status in FINISHED_STATUSES and st.session_state.get("finished_run") != tracked:
            st.session_state["finished_run"] = tracked
            st.rerun()  # once, so the page stops polling and shows the final state

    if st.session_state.get("finished_run") == tracked:
        show_run(tracked)
    else:
        follow()
