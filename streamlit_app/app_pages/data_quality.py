"""Data quality: the score over time, the latest check results, records per stage and rows dropped."""

import pandas as pd
import streamlit as st

from streamlit_app import charts, services, tables
from streamlit_app.settings import current_connection

st.title("Data quality")
conn = current_connection()
with services.asking_dagster(stop_page=True):
    reports = services.materializations(conn, "validation_report", 50)
    checks = pd.DataFrame(services.check_results(conn))
    latest = services.latest_materializations(conn, tuple(a for assets in tables.STAGES.values() for a in assets))

if not reports:
    st.info("No validation yet: run the complete pipeline from the Refresh page.")
    st.stop()

current = reports[0]["metadata"]
threshold = current.get("min_quality_score")
cols = st.columns(3)
change = current["quality_score"] - reports[1]["metadata"]["quality_score"] if len(reports) > 1 else 0.0
cols[0].metric(
    "Quality score", f"{current['quality_score']:.2f}", f"{change:+.2f} since the previous run" if change else None
)
cols[1].metric("Records with a defect", f"{current.get('invalid_records', 0):,}")
cols[2].metric("Failed checks", current.get("failed_checks", 0))
st.caption(
    "Quality score: the share of raw records (users, products, transactions) that break no rule, in percent. "
    f"Training needs at least {threshold}."
)

st.subheader("Quality score over time")
st.altair_chart(charts.quality_over_time(tables.quality_frame(reports), threshold), width="stretch")

st.subheader("Latest check results")
if not checks.empty:
    view = checks.assign(result=checks["passed"].map({True: "passed", False: "failed"}).fillna("not run"))
    view = view[["asset", "check", "result", "severity", "failing_rows", "total_rows", "description"]]
    only_failed = st.toggle("Only failed checks", value=False)
    if only_failed:
        view = view[view["result"] == "failed"]
    st.dataframe(view.sort_values(["result", "asset"]), hide_index=True, width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("Records per stage")
    counts = tables.stage_counts(latest)
    if not counts.empty:
        st.altair_chart(charts.records_per_stage(counts))
with right:
    st.subheader("Rows dropped, and why")
    dropped = tables.dropped_frame(latest)
    if dropped.empty:
        st.write("No rows dropped in the latest preparation.")
    else:
        st.altair_chart(charts.dropped_rows(dropped), width="stretch")
        st.dataframe(dropped, hide_index=True, width="stretch")
