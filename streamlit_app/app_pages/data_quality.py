"""Data quality: a verdict, then each problem found in the exports with example rows and what to do;
the score over time, every check's result, and the rows read, prepared and left out."""

import re
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dagster_project.settings import folder
from streamlit_app import charts, quality, services, tables, verdict
from streamlit_app.settings import current_connection

st.title("Data quality")
conn = current_connection()
reports, check_rows, latest, from_dagster = [], [], {}, False
with services.asking_dagster():
    reports = services.materializations(conn, "validation_report", 50)
    check_rows = services.check_results(conn)
    latest = services.latest_materializations(conn, tuple(a for assets in tables.STAGES.values() for a in assets))
    from_dagster = True

now = datetime.now(UTC).timestamp()
if from_dagster:
    if not reports:
        st.info("No data check has run yet: start a refresh on the Refresh page.", icon=":material/info:")
        st.stop()
    current = reports[0]["metadata"]
    score, threshold = current["quality_score"], current.get("min_quality_score")
    low_files = dict(current.get("files_below_threshold") or {})
    invalid, checked_at = current.get("invalid_records", 0), reports[0]["timestamp"]
    views = quality.from_api(check_rows)
    gate = next((v for v in views if v.name == "quality_gate"), None)
    gate_passed = gate.passed if gate is not None else None
    st.caption(f"From the last data check, {verdict.ago(checked_at, now)} ({verdict.day_time(checked_at)}).")
else:
    stored = quality.stored_report(folder("storage"))
    if stored is None:
        st.info(
            "No data check result is stored on this machine yet; the check results show again as soon as the "
            "pipeline service answers.",
            icon=":material/info:",
        )
        st.stop()
    report, checked_at = stored
    score, threshold, invalid = report.quality_score, report.min_quality_score, report.invalid_records
    views, gate_passed = quality.from_report(report), report.gate_passed
    low_files = {f.file: f.quality_score for f in report.files_below}
    st.caption(
        f"From the report the pipeline last wrote, {verdict.ago(checked_at, now)} ({verdict.day_time(checked_at)}): "
        "the history and the rows per stage show again when the pipeline service answers."
    )

problems = sorted(  # when purchase files stopped the refresh, the purchases' problems come first
    (v for v in views if v.passed is False and v.name != "quality_gate"),
    key=lambda v: (bool(low_files) and v.entity != "transactions", -v.failing_rows),
)
needed = f"{threshold:g}%" if threshold is not None else "the minimum"
if gate_passed is False and low_files and (threshold is None or score >= threshold):
    files_words = quality.low_files_words({tables.plain(name): value for name, value in low_files.items()})
    st.error(
        f"**Training was stopped: {files_words}, below the {needed} needed, though the data "
        f"as a whole scores {score:.1f}%.** A file this poor is usually a wrong or broken export (columns shifted, "
        "another shop's customers). The current model stays in place. Fix or replace the file in the data folder "
        "(or take it out if it does not belong there), then refresh again; the problems below show what is wrong.",
        icon=":material/block:",
    )
elif gate_passed is False:
    st.error(
        f"**Training was stopped: the data quality is {score:.1f}%, below the {needed} needed.** The current model "
        "stays in place. Fix the problems below in the exports (or lower the minimum on the Refresh page if they "
        "are expected), then refresh again.",
        icon=":material/block:",
    )
elif problems:
    st.info(
        f"**The data is good enough to train on: {score:.1f}% of the records have no problem "
        f"({needed} needed).** {len(problems)} checks found problems; those rows were corrected or left out, "
        "and fixing them in the exports makes the recommendations better.",
        icon=":material/fact_check:",
    )
else:
    st.success(f"**The data is clean: every check passed ({score:.1f}%).**", icon=":material/check_circle:")

cols = st.columns(3)
change = score - reports[1]["metadata"]["quality_score"] if len(reports) > 1 else 0.0
cols[0].metric(
    "Data quality",
    f"{score:.1f}%",
    f"{change:+.1f} points since the previous check" if change else None,
    help="The share of all records (customers, products, purchases) that break no rule (technical: quality "
    f"score). Training needs at least {needed}.",
)
cols[1].metric("Records with a problem", f"{invalid:,}", help="A record breaking several rules counts once.")
cols[2].metric(
    "Checks with problems",
    f"{len(problems)} of {sum(1 for v in views if v.name != 'quality_gate')}",
)

st.subheader("Problems found, and what to do")
if not problems:
    st.write("None: every check passed.")
for view in problems:
    share = view.failing_rows / view.total_rows if view.total_rows else 0.0
    title = (
        f"{quality.TABLE_WORDS.get(view.entity, view.entity)}: {quality.check_words(view.name).lower()} — "
        f"{view.failing_rows:,} of {view.total_rows:,} rows ({share:.1%})"
    )
    with st.expander(title, expanded=view is problems[0]):
        words = f"**The rule:** {view.description}.  \n**What happens:** {view.effect}.  \n**What to do:** {view.fix}"
        st.markdown(re.sub(r"([\w.+-]+@[\w-]+(?:\.[\w-]+)+)", r"`\1`", words))  # an example address, not a link
        examples = quality.examples_frame(view)
        if not examples.empty:
            st.caption("Example rows (the file, its row number, and the values the check looked at):")
            st.dataframe(examples, hide_index=True, width="stretch")
        st.caption(
            f"Advisory: this problem lowers the data quality score; the refresh goes on. Technical name: `{view.name}`."
        )

dropped = quality.dropped_by_rule(latest)
st.subheader("Every check")
frame = quality.checks_frame(views, dropped)
if st.toggle("Only checks with problems", value=False):
    frame = frame[frame["Result"] == "Problems found"]
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={"What it means": st.column_config.TextColumn("What it means", help=quality.MEANINGS)},
)
st.caption(
    quality.MEANINGS + " "
    "Rows with the problem and rows left out differ for two reasons: a row that breaks several rules is left "
    "out once, counted under the first rule it breaks; and some problems are corrected instead of leaving the "
    "row out (an invalid e-mail or age is emptied, the customer kept)."
)

if from_dagster:
    st.subheader("Data quality over time")
    st.altair_chart(charts.quality_over_time(tables.quality_frame(reports), threshold), width="stretch")
    st.caption(f"Each point is one data check; the dashed line is the minimum needed to train ({needed}).")

    st.subheader("Records read, prepared and used")
    counts = tables.stage_counts(latest)
    if not counts.empty:
        st.altair_chart(charts.records_per_stage(counts), width="stretch")
    st.subheader("Rows left out, and why")
    left_out = tables.dropped_frame(latest)
    if left_out.empty:
        st.write("No rows were left out in the latest preparation.")
    else:
        left_out = left_out.assign(
            Data=left_out["table"].map(quality.TABLE_WORDS), Reason=left_out["reason"].map(quality.reason_words)
        )
        st.altair_chart(charts.dropped_rows(left_out), width="stretch")
        st.dataframe(
            pd.DataFrame({"Data": left_out["Data"], "Reason": left_out["Reason"], "Rows left out": left_out["rows"]}),
            hide_index=True,
            width="stretch",
        )
