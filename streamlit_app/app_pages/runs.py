"""Runs: every recent run, whoever started it, with durations over time and per-step timings."""

import streamlit as st

from streamlit_app import charts, services, tables
from streamlit_app.settings import current_connection

st.title("Runs")
conn = current_connection()
with services.asking_dagster(stop_page=True):
    runs = tables.runs_frame(services.recent_runs(conn))

if runs.empty:
    st.info("No runs yet: start one on the Refresh page or in the Dagster UI.")
    st.stop()

jobs = st.multiselect("Jobs", sorted(runs["job"].unique()), default=sorted(runs["job"].unique()))
shown = runs[runs["job"].isin(jobs)]
finished = shown.dropna(subset=["duration_s"])
cols = st.columns(3)
cols[0].metric("Runs", len(shown))
cols[1].metric("Succeeded", int((shown["status"] == "SUCCESS").sum()))
cols[2].metric("Median duration (s)", f"{finished['duration_s'].median():.1f}" if len(finished) else "–")

st.subheader("Run durations")
if len(finished):
    st.altair_chart(charts.run_durations(finished), width="stretch")
st.dataframe(
    shown.assign(link=shown["run_id"].map(conn.run_url)),
    hide_index=True,
    width="stretch",
    column_config={
        "link": st.column_config.LinkColumn("Dagster UI", display_text="open"),
        "start": st.column_config.DatetimeColumn("start", format="YYYY-MM-DD HH:mm:ss"),
    },
)

st.subheader("Steps of a run")
run_id = st.selectbox(
    "Run",
    shown["run_id"],
    format_func=lambda r: (
        f"{r[:8]} · {shown.set_index('run_id').loc[r, 'job']} · {shown.set_index('run_id').loc[r, 'status']}"
    ),
)
if run_id:
    with services.asking_dagster(stop_page=True):
        steps = tables.steps_frame(services.run_detail(conn, run_id))
    if steps["duration_s"].notna().any():
        st.altair_chart(charts.step_durations(steps.dropna(subset=["duration_s"])), width="stretch")
    st.dataframe(steps, hide_index=True, width="stretch")
