"""Runs: every recent refresh, whoever started it, with durations over time and the steps of one run."""

import streamlit as st

from streamlit_app import charts, services, tables, verdict
from streamlit_app.settings import current_connection

st.title("Runs")
conn = current_connection()
runs = None
with services.asking_dagster():
    runs = tables.plain_runs_frame(services.recent_runs(conn))
if runs is None:
    st.info(
        "The run history lives in the pipeline service, so it shows again as soon as the service answers. "
        "Recommendations keep working meanwhile.",
        icon=":material/history:",
    )
    st.stop()

if runs.empty:
    st.info("No refresh has run yet: start one on the Refresh page.", icon=":material/info:")
    st.stop()

labels = sorted(runs["What ran"].unique())
chosen = st.multiselect("What ran", labels, default=labels)
shown = runs[runs["What ran"].isin(chosen)]
finished = shown.dropna(subset=["seconds"])
cols = st.columns(3)
cols[0].metric("Runs", len(shown))
cols[1].metric("Succeeded", int((shown["status"] == "SUCCESS").sum()))
cols[2].metric(
    "Typical duration",
    verdict.duration_words(finished["seconds"].median()) if len(finished) else "–",
    help="The median time from start to end of the finished runs shown.",
)
failed = shown[shown["status"] == "FAILURE"].head(1)
if len(failed):
    row = failed.iloc[0]
    with services.asking_dagster():
        reason = services.failure_message(conn, row["run_id"])
        st.error(
            f"**The last failed run ({row['What ran']}, {row['Started']}) stopped because:**\n\n"
            f"{reason or 'no reason was recorded; open it in the Dagster UI.'}",
            icon=":material/error:",
        )

st.subheader("Run durations")
if len(finished):
    st.altair_chart(charts.run_durations(finished), width="stretch")
st.dataframe(
    shown.assign(link=shown["run_id"].map(conn.run_url))[
        ["What ran", "Result", "Started", "Took", "Started by", "Run", "link"]
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "link": st.column_config.LinkColumn("Details", display_text="open", help="The run in the Dagster UI"),
        "Run": st.column_config.TextColumn("Run", help="The first characters of the run's id"),
    },
)

st.subheader("Steps of a run")
by_id = shown.set_index("run_id")
run_id = st.selectbox(
    "Run",
    shown["run_id"],
    format_func=lambda r: f"{by_id.loc[r, 'What ran']} · {by_id.loc[r, 'Started']} · {by_id.loc[r, 'Result']}",
)
if run_id:
    steps = None
    with services.asking_dagster():
        steps = tables.plain_steps_frame(services.run_detail(conn, run_id))
    if steps is not None:
        if steps["seconds"].notna().any():
            st.altair_chart(charts.step_durations(steps.dropna(subset=["seconds"])), width="stretch")
        st.dataframe(steps[["Step", "Result", "Took"]], hide_index=True, width="stretch")
