"""Overview: is Dagster up, how did the last runs go, how fresh is the model, and the headline figures."""

from datetime import datetime

import pandas as pd
import streamlit as st

from dagster_project.recommender import ModelError
from streamlit_app import access, services, tables
from streamlit_app.dagster_api import JOBS
from streamlit_app.settings import current_connection

st.title("RecoMart")
st.caption("Product recommendations for the shop, refreshed from its exports.")
conn = current_connection()

info, runs, latest, dagster_ok, daemons = {}, [], {}, False, []
with services.asking_dagster():
    info = services.server_info(conn)
    daemons = services.instance_info(conn)["instance"]["daemonHealth"]["allDaemonStatuses"]
    runs = services.recent_runs(conn)
    latest = services.latest_materializations(
        conn, ("raw_users", "raw_products", "raw_transactions", "validation_report")
    )
    dagster_ok = True

if dagster_ok:
    st.success(
        f"Dagster webserver {info.get('dagster_webserver_version', '')} is up at [{conn.base_url}]({conn.base_url}).",
        icon=":material/cloud_done:",
    )
    if any(d["required"] and not d["healthy"] for d in daemons):
        st.warning(
            "The Dagster daemon is not running: refreshes will wait in the queue until it starts "
            "(`./run_pipeline.sh ui` starts it with the webserver).",
            icon=":material/pending:",
        )

st.subheader("Headline figures")
cols = st.columns(5)
for col, (label, asset) in zip(
    cols, (("Users", "raw_users"), ("Products", "raw_products"), ("Transactions", "raw_transactions"))
):
    found = latest.get(asset)
    col.metric(
        label,
        f"{found['metadata']['records']:,}" if found else "–",
        help=f"Records in the latest {asset} materialization",
    )
report = latest.get("validation_report")
cols[3].metric(
    "Quality score",
    f"{report['metadata']['quality_score']:.1f}" if report else "–",
    help="Share of raw records with no defect, in percent",
)

try:
    model = services.served_model()
except ModelError as exc:
    model = None
    cols[4].metric("NDCG@10", "–")
    st.warning(f"{exc}", icon=":material/model_training:")
    if access.current_user().is_operator:
        st.page_link("app_pages/refresh.py", label="Start a refresh", icon=":material/refresh:")
if model is not None:
    new = model.card.metrics.get("new")
    if new:
        lift = new["svd"].ndcg / new["popularity"].ndcg if new["popularity"].ndcg else float("nan")
        cols[4].metric(
            "NDCG@10",
            f"{new['svd'].ndcg:.3f}",
            f"{lift:.2f}x best-sellers",
            help="Ranking quality of new-product lists on held-out purchases. " + tables.holdout_text(model.card),
        )
    else:  # nothing was evaluated: say so, never show 0.0 as if it were a measurement
        reason = tables.not_measured(model.card).get("new", "not measured")
        cols[4].metric("NDCG@10", "not measured", help=reason)
        st.warning(
            f"The served model was {reason}. Its recommendations work, but how good they are is unknown: "
            f"more customers with purchases over a longer time make it measurable.",
            icon=":material/help:",
        )
    trained = datetime.fromisoformat(model.card.trained_at)
    st.info(
        f"Model trained {tables.ago(trained.timestamp())} ({trained:%Y-%m-%d %H:%M} UTC) on "
        f"{model.card.transactions:,} transactions; run `{(model.card.run_id or '?')[:8]}`.",
        icon=":material/model_training:",
    )

st.subheader("Last runs")
if runs:
    frame = tables.runs_frame(runs)
    last = frame.groupby("job", sort=False).head(1).set_index("job")
    rows = []
    for job in JOBS:
        if job in last.index:
            row = last.loc[job]
            rows.append(
                {
                    "job": job,
                    "status": row["status"],
                    "started": row["start"],
                    "duration_s": row["duration_s"],
                    "launched by": row["launched_by"],
                    "link": conn.run_url(row["run_id"]),
                }
            )
        else:
            rows.append(
                {
                    "job": job,
                    "status": "never run",
                    "started": None,
                    "duration_s": None,
                    "launched by": None,
                    "link": None,
                }
            )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn("Dagster UI", display_text="open run"),
            "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        },
    )
elif dagster_ok:
    st.write("No runs yet: start one on the Refresh page.")
