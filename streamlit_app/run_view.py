"""How the Refresh page shows one run: progress in words while it runs, then what changed or why it failed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from streamlit_app import run_story, services, tables
from streamlit_app.dagster_api import FINISHED_STATUSES, Connection, DagsterAPI, DagsterError, Run


def show_outcome(api: DagsterAPI, conn: Connection, run: Run) -> None:
    """Success: what changed and where to go next. Failure: why, that nothing was replaced, what to do."""
    if run.status == "SUCCESS":
        took = run_story.duration_words(run.duration)
        if run.job_name == "ingestion_job":
            st.success(
                f"**Done in {took}:** the exports were read and checked. The model stays as it is.",
                icon=":material/check_circle:",
            )
        else:
            st.success(
                f"**Done in {took}:** the app now serves the new model.",
                icon=":material/check_circle:",
            )
        histories = {}
        try:
            for asset in ("raw_users", "raw_products", "raw_transactions", "validation_report"):
                histories[asset] = services.materializations(conn, asset, 20)
            if run.job_name != "ingestion_job":
                histories["collaborative_filtering_model"] = services.materializations(
                    conn, "collaborative_filtering_model", 20
                )
        except DagsterError:
            st.caption("The figures before and after are not available right now.")
        found = run_story.changes(histories, run.run_id)
        if found:
            st.markdown("**Before → after this refresh**")
            for index, change in enumerate(found):
                if index % 3 == 0:  # rows of three, so a narrow screen stacks them in reading order
                    cols = st.columns(3)
                cols[index % 3].metric(
                    change.label,
                    change.shown(change.after),
                    delta=change.delta,
                    delta_color="off" if change.kind == "count" or change.delta == "no change" else "normal",
                    delta_arrow="off" if change.delta == "no change" else "auto",
                    help=f"{change.help} Before: {change.shown(change.before)}.",
                )
            verdict = run_story.model_verdict(found)
            if verdict:
                st.markdown(verdict)
        st.page_link(
            "app_pages/recommendations.py",
            label="See the recommendations",
            icon=":material/recommend:",
        )
        return
    if run.status == "CANCELED":
        st.warning(
            "**The refresh was stopped before it finished.** The current model stays in place. Start it again "
            "when you are ready.",
            icon=":material/stop_circle:",
        )
        return
    try:
        message = api.failure_message(run.run_id)
    except DagsterError:
        message = None
    st.error(
        "**The refresh failed; the current model stays in place** and the recommendations are unchanged.\n\n"
        + run_story.failure_markdown(message),
        icon=":material/error:",
    )
    st.info(
        "**What to do:** fix what is named above in the export and upload it again below (the upload is checked "
        "before it is accepted), or lower the minimum quality score under Options if those rows are expected. "
        "Engineers find the full log through the link to the Dagster UI.",
        icon=":material/lightbulb:",
    )


def show_run(api: DagsterAPI, conn: Connection, run_id: str) -> str | None:
    """The run's headline, its progress in words or its outcome, and its steps; the status (None: no answer)."""
    try:
        run = api.run(run_id)
    except DagsterError:
        st.caption("Waiting for the pipeline service to answer…")
        return None
    st.markdown(
        f"**{run_story.job_label(run.job_name)}**, started by {run.launched_by} "
        f"({tables.ago(run.start_time or run.created)}). "
        f"[Open in the Dagster UI]({conn.run_url(run_id)})",
        help=f"Run id {run_id}",
    )
    if run.status not in FINISHED_STATUSES:
        share, words = run_story.progress(run)
        st.progress(share, text=words)
    else:
        show_outcome(api, conn, run)
    rows = run_story.steps_rows(run)
    if rows:
        with st.expander("Steps", expanded=run.status not in FINISHED_STATUSES):
            st.dataframe(
                pd.DataFrame(rows),
                hide_index=True,
                width="stretch",
                column_config={"key": st.column_config.TextColumn("technical name", help="Dagster's step key")},
            )
    return run.status
