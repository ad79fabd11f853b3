"""Overview: one verdict first (what customers are served, how the last refresh went, how fresh the data is),
then the headline figures in people's words, then the last run of each refresh."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dagster_project import model_store
from dagster_project.recommender import ModelError
from dagster_project.settings import folder
from streamlit_app import access, run_story, services, tables, verdict
from streamlit_app.dagster_api import JOBS
from streamlit_app.settings import current_connection

st.title("RecoMart")
st.caption("Product recommendations for the shop, refreshed from its exports.")
conn = current_connection()
now = datetime.now(UTC).timestamp()

# --- what the pipeline says ----------------------------------------------------------------------
info, runs, latest, raw_history, daemons, fresh, dagster_ok = {}, [], {}, [], [], {}, False
with services.asking_dagster():
    info = services.server_info(conn)
    daemons = services.instance_info(conn)["instance"]["daemonHealth"]["allDaemonStatuses"]
    runs = [r for r in services.recent_runs(conn) if r.job_name in JOBS]
    latest = services.latest_materializations(conn, ("raw_users", "raw_products", "validation_report"))
    raw_history = run_story.per_run(services.materializations(conn, "raw_transactions", 50))
    dagster_ok = True
if dagster_ok:
    try:  # Dagster's freshness checks; without them the model's and the data's age are judged here
        fresh = services.freshness(conn)
    except Exception:  # an older webserver or API without freshness: fall back, never fail the page
        fresh = {}

# --- what is served ----------------------------------------------------------------------------
models_dir = folder("models")
card, model_problem, fallback, newest_kept, previous = None, None, False, None, None
try:
    card = services.served_model().card
    fallback = bool(services.model_problems())
except ModelError as exc:
    model_problem = str(exc)
kept = model_store.list_versions(models_dir)
if card is not None and card.version and kept:
    names = [model_store.version_name(p) for p in kept]
    if not fallback and names[0] != card.version:
        newest_kept = services.card_of(kept[0])
    if card.version in names and names.index(card.version) + 1 < len(kept):
        previous = services.card_of(kept[names.index(card.version) + 1])

last_run = None
if runs:
    run = runs[0]
    failure = None
    if run.status == "FAILURE":
        with services.asking_dagster():
            failure = services.failure_message(conn, run.run_id)
    last_run = verdict.LastRun(
        tables.job_label(run.job_name),
        run.status,
        run.start_time or run.created,
        run.duration,
        failure,
        conn.run_url(run.run_id),
    )

raw_now = raw_history[0] if raw_history else None
at_training = next((m for m in raw_history if card is not None and m["run_id"] == card.run_id), None)
limit = verdict.max_age_hours()
trained_at = datetime.fromisoformat(card.refreshed_at).timestamp() if card is not None else None
facts = verdict.Facts(
    now=now,
    card=card,
    model_problem=model_problem,
    served_fallback=fallback,
    newest_kept=newest_kept,
    pipeline_up=dagster_ok,
    last_run=last_run,
    raw_transactions=raw_now["metadata"].get("records") if raw_now else None,
    raw_read_at=raw_now["timestamp"] if raw_now else None,
    raw_run_id=raw_now["run_id"] if raw_now else None,
    raw_at_training=at_training["metadata"].get("records") if at_training else None,
    model_freshness=verdict.as_freshness(fresh.get(verdict.MODEL_ASSET), verdict.judged(trained_at, now, limit), now),
    data_freshness=verdict.as_freshness(
        fresh.get(verdict.DATA_ASSET), verdict.judged(raw_now["timestamp"] if raw_now else None, now, limit), now
    ),
)
judgement = verdict.verdict(facts)
box = {verdict.OK: st.success, verdict.WARN: st.warning, verdict.BAD: st.error}[judgement.level]
icon = {verdict.OK: ":material/check_circle:", verdict.WARN: ":material/warning:", verdict.BAD: ":material/error:"}
box(
    f"**{judgement.headline}**\n\n" + "\n".join(f"- {line.text}" for line in judgement.lines),
    icon=icon[judgement.level],
)
if last_run is not None and last_run.status == "FAILURE":
    st.page_link("app_pages/runs.py", label="What went wrong, step by step (Runs)", icon=":material/history:")
if newest_kept is not None:
    st.page_link("app_pages/model_history.py", label="Compare the versions (Model history)", icon=":material/timeline:")
if access.current_user().is_operator and (card is None or judgement.level != verdict.OK) and dagster_ok:
    st.page_link("app_pages/refresh.py", label="Start a refresh", icon=":material/refresh:")

if dagster_ok:
    daemon_down = any(d["required"] and not d["healthy"] for d in daemons)
    if daemon_down:
        st.warning(
            "The pipeline's scheduler is not running: refreshes will wait in the queue until it starts.",
            icon=":material/pending:",
        )
    st.caption(
        "The pipeline is running." if not daemon_down else "The pipeline service answers, but its scheduler does not."
    )
    with st.expander("Details for the engineer"):
        st.markdown(
            f"Dagster webserver {info.get('dagster_webserver_version', '')} at [{conn.base_url}]({conn.base_url}); "
            + ", ".join(
                f"{d['daemonType']} {'healthy' if d['healthy'] else 'NOT healthy'}" for d in daemons if d["required"]
            )
            + (f"; freshness from Dagster's checks ({', '.join(fresh)})" if fresh else "; freshness judged from times")
            + f" (max age {limit:g} h)."
        )

# --- headline figures ---------------------------------------------------------------------------
st.subheader("Headline figures")


def records(asset: str) -> int | None:
    if asset == "raw_transactions":  # every purchase file's lines: from the newer of the last read and report
        report = latest.get("validation_report")
        counted = report["metadata"].get("purchase_records") if report else None
        if counted is not None and (raw_now is None or report["timestamp"] >= raw_now["timestamp"]):
            return counted
        return raw_now["metadata"].get("records") if raw_now else None
    found = latest.get(asset)
    return found["metadata"].get("records") if found else None


cols = st.columns(4)
for col, (label, asset, from_card, what) in zip(
    cols,
    (
        ("Customers", "raw_users", card.users if card else None, "customer rows in the latest export"),
        ("Products", "raw_products", card.items if card else None, "products in the latest export"),
        ("Purchases", "raw_transactions", card.purchases if card else None, "purchase lines in all purchase files"),
    ),
):
    value = records(asset)
    source = f"{what} (technical: records of `{asset}`)"
    if value is None and from_card is not None:
        value, source = from_card, "what the served model was trained on (the pipeline service is not answering)"
    col.metric(label, f"{value:,}" if value is not None else "–", help=source.capitalize())
report = latest.get("validation_report")
cols[3].metric(
    "Data quality",
    f"{report['metadata']['quality_score']:.1f}%" if report else "–",
    help="The share of records in the exports that break no data rule (technical: quality score). "
    "Details on the Data quality page.",
)

if card is not None:
    new = card.metrics.get("new")
    cols = st.columns(3)
    if new:
        ours, best_sellers = new["svd"], new["popularity"]
        with cols[0]:
            st.metric(
                "Hit rate",
                f"{ours.hit_rate:.0%}",
                help=f"Technical: hit rate@{card.holdout.k} of new-product lists ({ours.users:,} customers); "
                f"NDCG@{card.holdout.k} {ours.ndcg:.3f}. " + tables.holdout_text(card),
            )
            st.caption(
                f"For {ours.hit_rate:.0%} of customers, something they bought next was in their list of "
                f"{card.holdout.k} (best-sellers: {best_sellers.hit_rate:.0%})."
            )
        against = verdict.compare(ours.ndcg, best_sellers.ndcg, "a best-seller list")
        with cols[1]:
            st.metric(
                "Against best-sellers",
                against.word,
                help=f"Technical: NDCG@{card.holdout.k} {ours.ndcg:.3f} against {best_sellers.ndcg:.3f} "
                "for the most-bought products.",
            )
            st.caption(against.sentence)
        with cols[2]:
            before = previous.metrics.get("new") if previous is not None else None
            if before:
                change = verdict.compare(ours.ndcg, before["svd"].ndcg, "the previous model")
                st.metric(
                    "Against the previous model",
                    change.word,
                    help=f"Technical: NDCG@{card.holdout.k} {ours.ndcg:.3f} against {before['svd'].ndcg:.3f} for "
                    f"the version trained {previous.trained_at[:16].replace('T', ' ')} UTC, each on its own "
                    "held-out purchases.",
                )
                st.caption(change.sentence)
            else:
                st.metric("Against the previous model", "–", help="No earlier kept version with figures.")
                st.caption("No earlier model to compare with.")
    else:  # nothing was evaluated: say so, never show 0.0 as if it were a measurement
        reason = tables.not_measured(card).get("new", "not measured")
        cols[0].metric("Hit rate", "not measured", help=reason)
        st.warning(
            f"How good the recommendations are is unknown: the served model was {reason}. They work; more "
            "customers with purchases over a longer time make them measurable.",
            icon=":material/help:",
        )

# --- last runs ----------------------------------------------------------------------------------
st.subheader("Last refreshes")
if dagster_ok:
    frame = tables.plain_runs_frame(runs)
    rows = []
    for job in JOBS:
        found = frame[frame["job"] == job].head(1)
        if len(found):
            rows.append(found.iloc[0].to_dict() | {"link": conn.run_url(found.iloc[0]["run_id"])})
        else:
            rows.append(
                {"What ran": tables.job_label(job), "Result": "Never run", "Started": "–", "Took": "–"}
                | {"Started by": "–", "link": f"{conn.base_url}/jobs/{job}"}
            )
    st.dataframe(
        pd.DataFrame(rows)[["What ran", "Result", "Started", "Took", "Started by", "link"]],
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn(
                "Details", display_text="open", help="The run in Dagster, the pipeline's own view"
            ),
        },
    )
else:
    st.info("The last refreshes are shown again as soon as the pipeline service answers.", icon=":material/cloud_off:")
