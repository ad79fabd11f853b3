"""Refresh: which exports a refresh will read, start it and follow it in plain words, upload new exports
(checked by the pipeline's own rules before they are accepted) and put earlier files back."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dagster_project import uploads
from dagster_project.contract import LIMITS
from dagster_project.settings import folder
from streamlit_app import access, run_story, services, tables
from streamlit_app.dagster_api import FINISHED_STATUSES, DagsterError
from streamlit_app.run_requests import RefreshOptions, build_run_config, limits, run_tags
from streamlit_app.settings import current_connection

user = access.require_operator()
st.title("Refresh the data and the model")
st.caption(
    "A refresh reads the shop's exports from the data folder, checks their quality and, when they pass, "
    "trains a new model. Until a new model is ready, the current one keeps serving recommendations."
)
conn = current_connection()
api = services.api()
data_dir = folder("data")


def pipeline_problem() -> DagsterError | None:
    """None when the Dagster webserver answers (asked afresh, not from a cache: this decides the buttons)."""
    try:
        api.server_info()
    except DagsterError as exc:
        return exc
    return None


def show_down(problem: DagsterError) -> None:
    st.error(
        "**The pipeline service is not answering right now**, so a refresh cannot start. The recommendations "
        "keep working from the current model, and uploads can still be checked and accepted. This page checks "
        "again every few seconds and carries on by itself when the service is back.",
        icon=":material/cloud_off:",
    )
    with st.expander("Details for engineers"):
        st.markdown(tables.plain(problem))


problem = pipeline_problem()
st.session_state["pipeline_up_drawn"] = problem is None
if problem is not None:

    @st.fragment(run_every=3)
    def wait_for_pipeline() -> None:
        """The one banner while Dagster is down; the whole page is drawn again as soon as it answers."""
        found = pipeline_problem()
        if found is None:
            st.rerun(scope="app")
        show_down(found)

    wait_for_pipeline()
pipeline_up = problem is None


def start_refresh(job: str, options: RefreshOptions) -> None:
    """Start a run, or follow the one under way (one lock for every session: never two at once)."""
    acting = access.require_operator()  # the role at the moment of acting, not when the page was drawn
    try:
        run_config = build_run_config(job, options)
    except ValueError as exc:
        st.error(str(exc))
        return
    try:
        with services.submit_lock():
            under_way = api.active_runs()
            if not under_way:
                st.session_state["tracked_run"] = api.submit(job, run_config, run_tags(acting.name))
    except DagsterError:
        st.rerun()  # drawn again: the page says the service is down, once
    if under_way:
        st.session_state["tracked_run"] = under_way[0].run_id
        st.session_state["follow_note"] = (
            f"A refresh is already under way ({run_story.job_label(under_way[0].job_name).lower()}): "
            "following it instead of starting another."
        )
    else:
        st.session_state.pop("follow_note", None)


# --- 1. start a refresh -------------------------------------------------------------------------------
st.subheader("Start a refresh")
job = st.radio(
    "What to do",
    list(run_story.JOB_CHOICES),
    format_func=lambda key: f"{run_story.JOB_CHOICES[key][0]}: {run_story.JOB_CHOICES[key][1]}",
    key="job_choice",
)

st.markdown("**The exports it will read**, from the data folder:")


@st.cache_data(show_spinner=False, max_entries=256)
def rows_of(path: str, mtime_ns: int, size: int) -> int | None:
    return uploads.count_rows(path)


def row_words(rows: int | None) -> str:
    return "cannot be read" if rows is None else f"{rows:,}"


files = uploads.export_files(data_dir)
if files:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "file": f.name,
                    "holds": run_story.TABLE_WORDS[f.table],
                    "rows": row_words(rows_of(str(f.path), f.mtime_ns, f.size)),
                    "size": run_story.size_words(f.size),
                    "modified": tables.ago(f.modified),
                }
                for f in files
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "rows": st.column_config.TextColumn("rows", help="Lines in the file, less the header"),
            "modified": st.column_config.TextColumn("modified", help="When the file last changed"),
        },
    )
missing = [words for table, words in run_story.TABLE_WORDS.items() if table not in {f.table for f in files}]
if missing:
    st.warning(
        f"No {' or '.join(w.lower() for w in missing)} export in the data folder: a refresh would stop at once. "
        "Upload the missing export below.",
        icon=":material/warning:",
    )

with st.expander("Options", expanded=False):
    defaults = RefreshOptions()
    low, high = limits("min_quality_score")
    threshold = st.number_input(
        f"Minimum quality score to train ({low:g}-{high:g})",
        min_value=low,
        max_value=high,
        value=float(defaults.min_quality_score),
        step=1.0,
        help="Below this score the run stops before training; the current model stays in place. Uploads are "
        "judged against it too.",
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

if st.button(
    "Start refresh",
    type="primary",
    icon=":material/play_arrow:",
    key="start_refresh",
    disabled=not pipeline_up,
    help=None if pipeline_up else "The pipeline service is not answering; this button comes back when it does.",
):
    start_refresh(job, options)

if "tracked_run" not in st.session_state and pipeline_up:  # someone else's refresh may be running
    try:
        under_way = api.active_runs()
    except DagsterError:
        under_way = []
    if under_way:
        st.session_state["tracked_run"] = under_way[0].run_id


def show_outcome(run) -> None:
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


def show_run(run_id: str) -> str | None:
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
        show_outcome(run)
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


tracked = st.session_state.get("tracked_run")
if tracked:
    if note := st.session_state.get("follow_note"):
        st.info(note, icon=":material/hourglass_top:")

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

# --- 2. upload new exports ----------------------------------------------------------------------------
st.subheader("Upload new exports")
try:
    limit_mb = min(uploads.max_upload_mb(), int(st.get_option("server.maxUploadSize")))
except ValueError as exc:
    limit_mb = 0
    st.error(f"Uploads are switched off: {exc}", icon=":material/block:")
st.caption(
    f"Customers as users….csv, products as products….json, purchases as transactions….csv (a .csv.gz is fine). "
    f"Up to {limit_mb:,} MB per file; for a larger export, compress it, or ask whoever runs RecoMart to put it "
    "in the data folder. Uploaded files of a kind replace all current files of that kind; those are kept and can "
    "be put back. Nothing is accepted before it passes the same checks as a refresh."
)
slot = st.session_state.setdefault("upload_slot", 0)
chosen = st.file_uploader(
    "Exports to upload",
    accept_multiple_files=True,
    key=f"upload_files_{slot}",
    disabled=limit_mb == 0,
    help="The files are checked at once; nothing changes in the data folder until you accept them.",
)
if chosen:
    st.session_state.pop("upload_note", None)  # a new upload: the last one's note is done
elif done_note := st.session_state.get("upload_note"):
    st.success(done_note, icon=":material/task_alt:")


def automatic_words() -> str:
    """What happens to accepted files without a refresh started by hand, from the watcher's and schedule's state."""
    try:
        found = api.automations() if pipeline_up else {}
    except DagsterError:
        found = {}
    watcher, nightly = found.get("data_files_sensor"), found.get("daily_pipeline")
    if watcher is not None and watcher.running:
        return "Leave it to the automatic refresh: new files are picked up within a minute or two"
    if nightly is not None and nightly.running:
        return "Leave it to the nightly refresh (watching for new files is switched off)"
    if watcher is not None or nightly is not None:
        return "Leave them for later: the automatic refreshes are switched off, so start one when you are ready"
    return "Leave it to the automatic refresh, if it is switched on"


def as_uploads(files) -> list[uploads.Upload]:
    return [uploads.Upload(f.name, f.getvalue()) for f in files]


def show_check(verdict: uploads.UploadCheck) -> None:
    report = verdict.report
    if verdict.accepted:
        st.success(
            f"**These files can be used.** A refresh would give them a quality score of {report.quality_score:.1f} "
            f"(the minimum is {report.min_quality_score:g}).",
            icon=":material/check_circle:",
        )
    else:
        reasons = [tables.plain(r) for r in verdict.refusals]
        if report is not None and not report.gate_passed:
            reasons.append(
                f"The quality score would be {report.quality_score:.1f}, below the minimum of "
                f"{report.min_quality_score:g}: a refresh would stop before training. The rows that break a rule "
                "are listed below."
            )
        st.error(
            "**These files cannot be used; the data folder is unchanged.**\n\n" + "\n".join(f"- {r}" for r in reasons),
            icon=":material/block:",
        )
    if verdict.files:
        summary = pd.DataFrame(
            [
                {
                    "file": f.name,
                    "holds": run_story.TABLE_WORDS[f.table],
                    "rows": row_words(f.rows),
                    "columns matched": ", ".join(f.columns) if f.rows is not None else "",
                    "columns absent": ", ".join(f.missing),
                    "other columns (kept)": ", ".join(f.extra),
                    "problem": f.problem or "",
                }
                for f in verdict.files
            ]
        )
        optional = ["columns absent", "other columns (kept)", "problem"]
        st.dataframe(
            summary.drop(columns=[c for c in optional if not summary[c].any()]),
            hide_index=True,
            width="stretch",
            column_config={
                "columns absent": st.column_config.TextColumn(
                    "columns absent", help="Optional columns not in the file: the checks that need them are skipped"
                ),
            },
        )
    for table, names in verdict.replaces.items():
        if names and verdict.accepted:
            st.caption(f"{run_story.TABLE_WORDS[table]}: replaces {', '.join(names)} (kept, and can be put back).")
    if report is None:
        return
    cols = st.columns(3)
    cols[0].metric(
        "Quality score it would get",
        f"{report.quality_score:.1f}",
        help="Share of all rows (customers + products + purchases) that break no rule, in percent.",
    )
    cols[1].metric("Minimum to train", f"{report.min_quality_score:g}", help="The quality gate's threshold (Options).")
    cols[2].metric(
        "Quality gate", "passes" if report.gate_passed else "stops the refresh", help="validation_report.quality_gate"
    )
    failed = sorted(report.failed(), key=lambda c: -c.failing_rows)
    if failed:
        st.markdown("**Rows that break a rule** (a refresh drops or clears them and counts them), the most first:")
    for index, check in enumerate(failed):
        words = run_story.TABLE_WORDS[check.entity].lower()
        where = "in the uploaded files" if check.entity in verdict.replaces else "in the current files"
        with st.expander(
            f"{tables.plain(check.description.capitalize())}: {check.failing_rows:,} of {check.total_rows:,} "
            f"{words} rows ({where})",
            expanded=index == 0,
        ):
            st.markdown(f"Rule `{check.name}`; the first rows that break it:")
            examples = pd.DataFrame(check.examples).rename(columns={"source_file": "file", "source_row": "row"})
            if len(examples):
                st.dataframe(examples.fillna("(empty)"), hide_index=True, width="stretch")


if chosen:
    threshold_now = float(options.min_quality_score)
    signature = (tuple((f.name, f.size, f.file_id) for f in chosen), threshold_now, limit_mb)
    cached = st.session_state.get("upload_check")
    if not cached or cached[0] != signature:
        with st.spinner("Checking the files as a refresh would…"):
            verdict = uploads.check(as_uploads(chosen), data_dir, threshold_now, LIMITS, limit_mb * 1_000_000)
        st.session_state["upload_check"] = (signature, verdict)
    else:
        verdict = cached[1]
    show_check(verdict)
    if verdict.accepted:
        then = st.radio(
            "Once accepted",
            ["start", "wait"],
            format_func={"start": "Start a refresh now", "wait": automatic_words()}.get,
            key="after_upload",
            disabled=not pipeline_up,
            index=0 if pipeline_up else 1,
        )
        if st.button("Accept these files", type="primary", icon=":material/upload_file:", key="accept_upload"):
            access.require_operator()
            busy = []
            if pipeline_up:
                try:
                    busy = api.active_runs()
                except DagsterError:
                    busy = []
            if busy:
                st.warning(
                    "A refresh is reading the data folder right now: accept the files when it has finished.",
                    icon=":material/hourglass_top:",
                )
            else:
                try:
                    verdict, done = uploads.accept(
                        as_uploads(chosen), data_dir, threshold_now, LIMITS, limit_mb * 1_000_000
                    )
                except OSError as exc:
                    st.error(str(exc), icon=":material/error:")
                    done = None
                    verdict = None
                if done is not None:
                    note = f"Accepted {', '.join(done.written)}"
                    if done.kept.files:
                        note += f"; the files they replace are kept ({', '.join(n for n, _ in done.kept.files)})"
                    st.session_state["upload_note"] = note + "."
                    st.session_state["upload_slot"] = slot + 1
                    st.session_state.pop("upload_check", None)
                    if then == "start" and pipeline_up:
                        st.session_state.pop("finished_run", None)
                        start_refresh("complete_pipeline_job", options)
                        st.session_state["upload_note"] += " A refresh has started: follow it above."
                    else:
                        st.session_state["upload_note"] += " The automatic refresh will use them."
                    st.rerun()
                elif verdict is not None:
                    st.session_state["upload_check"] = (signature, verdict)
                    st.rerun()

# --- 3. earlier files ---------------------------------------------------------------------------------
kept = uploads.kept_sets(data_dir)
if kept:
    with st.expander(f"Files replaced by earlier uploads ({len(kept)})"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "replaced": k.when.strftime("%Y-%m-%d %H:%M UTC"),
                        "files": ", ".join(n for n, _ in k.files) or "(none: the upload added new kinds)",
                        "size": run_story.size_words(sum(s for _, s in k.files)),
                    }
                    for k in kept
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        names = {k.name: k for k in kept}
        by_label = {f"the files replaced on {k.when:%Y-%m-%d at %H:%M:%S} UTC": k.name for k in kept}
        pick = by_label[st.selectbox("Put back", list(by_label), key="restore_choice")]
        if st.button("Put these files back…", key="restore"):
            st.session_state["restore_pending"] = pick
        pending = st.session_state.get("restore_pending")
        if pending in names:
            chosen_set = names[pending]
            kinds = ", ".join(run_story.TABLE_WORDS[t].lower() for t in chosen_set.tables)
            st.warning(
                f"This puts back {', '.join(n for n, _ in chosen_set.files) or 'no files'} in place of the current "
                f"{kinds} files, which are kept in turn. The next refresh reads them.",
                icon=":material/history:",
            )
            yes, no = st.columns(2)
            if yes.button("Yes, put them back", type="primary", key="restore_confirm"):
                access.require_operator()
                done = uploads.restore(data_dir, pending, datetime.now(UTC))
                st.session_state.pop("restore_pending", None)
                st.session_state["upload_note"] = (
                    f"Put back {', '.join(done.written) or 'the earlier files'}. Start a refresh to use them."
                )
                st.rerun()
            if no.button("Cancel", key="restore_cancel"):
                st.session_state.pop("restore_pending", None)
                st.rerun()
