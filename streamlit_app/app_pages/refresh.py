"""Refresh: which exports a refresh will read, start it and follow it in plain words, upload new exports
(checked by the pipeline's own rules before they are accepted) and put earlier files back."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dagster_project import data_files, transaction_files, transaction_store, uploads
from dagster_project.contract import LIMITS
from dagster_project.settings import MODEL_FILENAME, folder
from streamlit_app import access, run_story, run_view, services, tables, upload_view
from streamlit_app.dagster_api import FINISHED_STATUSES, DagsterError
from streamlit_app.run_requests import (
    KIND_HELP,
    REFRESH_KINDS,
    FilesRequest,
    RefreshOptions,
    build_run_config,
    files_request,
    limits,
    run_tags,
)
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


@st.cache_resource(show_spinner=False)
def last_scans() -> dict[str, data_files.FileState]:
    """The data folder's last scan (shared by every session): a file is hashed again only when it changed."""
    return {}


def plan_request(job: str, kind: str) -> FilesRequest:
    """What a refresh of `kind` reads now: the folder's files as they are, against what storage prepared and
    the partitions Dagster knows. Raises DagsterError, or FileNameError naming a bad file name."""
    scans = last_scans()
    scanned = scans[str(data_dir)] = data_files.scan(data_dir, scans.get(str(data_dir)))
    files = transaction_files.current_files(scanned)
    stored = transaction_store.prepared_state(folder("storage"), transaction_files.reference(scanned))
    return files_request(job, kind, files, stored, api.partition_keys())


def start_refresh(job: str, options: RefreshOptions, kind: str) -> None:
    """Start a run, or follow the one under way (one lock for every session: never two at once).

    The purchase files become partitions first (new ones added, gone ones dropped), so the run can name
    the range it reads: from the first new or changed file for new data only, all files for everything.
    """
    acting = access.require_operator()  # the role at the moment of acting, not when the page was drawn
    try:
        run_config = build_run_config(job, options)
    except ValueError as exc:
        st.error(str(exc))
        return
    try:
        with services.submit_lock():
            under_way = api.active_runs()
            if not under_way:  # planned again at the click, under the lock: the files as they are now
                request = plan_request(job, kind)
                api.change_partitions(transaction_files.PARTITIONS_NAME, request.plan.add, request.plan.delete)
                tags = {**run_tags(acting.name), **request.tags}
                st.session_state["tracked_run"] = api.submit(job, run_config, tags, assets=request.assets)
                st.session_state["refresh_reads"] = request.words()
                st.session_state["refresh_whole"] = (
                    "customers and products again only if their files changed"
                    if kind == transaction_files.NEW_DATA
                    else "customers and products whole"
                )
    except transaction_files.FileNameError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    except DagsterError:
        st.rerun()  # drawn again: the page says the service is down, once
    if under_way:
        st.session_state["tracked_run"] = under_way[0].run_id
        st.session_state.pop("refresh_reads", None)
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
has_model = (folder("models") / MODEL_FILENAME).exists()
kind = st.radio(
    "What to read",
    list(REFRESH_KINDS),
    index=0 if has_model else 1,
    format_func=lambda key: f"{REFRESH_KINDS[key][0]}: {REFRESH_KINDS[key][1]}",
    key="refresh_kind",
    help=KIND_HELP,
)

st.markdown("**The exports it will read**, from the data folder:")


@st.cache_data(show_spinner=False, max_entries=256)
def rows_of(path: str, mtime_ns: int, size: int) -> int | None:
    return uploads.count_rows(path)


files = uploads.export_files(data_dir)


def planned(kind: str) -> transaction_files.Plan | None:
    """What this refresh would do with the purchase files (None when Dagster cannot say which files it knows)."""
    if not pipeline_up:
        return None
    try:
        return plan_request(job, kind).plan
    except (DagsterError, transaction_files.FileNameError):
        return None


shown_plan = planned(kind)  # once per drawing of the page; the click plans again with the files as they are then
reading = (
    None
    if shown_plan is None
    else set(transaction_files.keys_in_range(shown_plan.keys, shown_plan.start, shown_plan.end))
    if shown_plan.reads_files
    else set()
)


def read_words(table: str, name: str) -> str:
    if table != "transactions":  # new data only takes them as stored when their files did not change
        return "read again if changed" if kind == transaction_files.NEW_DATA else "read whole"
    if reading is None:
        return "–"
    return "read" if name in reading else "kept: unchanged since the last refresh"


if files:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "file": f.name,
                    "this refresh": read_words(f.table, f.name),  # beside the name: seen on a phone too
                    "rows": upload_view.row_words(rows_of(str(f.path), f.mtime_ns, f.size)),
                    "modified": tables.ago(f.modified),
                    "size": run_story.size_words(f.size),
                    "holds": run_story.TABLE_WORDS[f.table],
                }
                for f in files
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "rows": st.column_config.TextColumn("rows", help="Lines in the file, less the header"),
            "modified": st.column_config.TextColumn("modified", help="When the file last changed"),
            "this refresh": st.column_config.TextColumn(
                "this refresh",
                help="Purchase files are kept one by one; new data only reads those that are new or changed "
                "(from the first of them to the last file). Customers and products are read whole by a refresh of "
                "everything, and by new data only when their files changed.",
            ),
        },
    )
if shown_plan is not None and shown_plan.added_before:
    early = transaction_files.early_words([tables.plain(name) for name in shown_plan.added_before])
    st.info(
        f"**A new file sorts first:** {early}. If a new file is a copy of an export already here, take it out "
        "first: the later file would keep no line, and the refresh would stop at the quality check.",
        icon=":material/sort_by_alpha:",
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
    low, high = limits("min_coverage")
    variety = st.slider(
        "Variety: least share of the catalogue shown across the customers' new-product lists",
        round(low * 100),
        round(high * 100),
        round(defaults.min_coverage * 100),
        1,
        format="%d%%",
        disabled=job == "ingestion_job" or not auto_tune,
        help="Tuning picks the most accurate model whose new-product lists, between them, show at least this "
        "share of the products (catalogue coverage, measured on the month before the test). More variety means "
        "customers see fewer of the same best-sellers, and can cost some accuracy: Model history shows how much.",
    )
options = RefreshOptions(threshold, test_share, auto_tune, variety / 100)

if st.button(
    "Start refresh",
    type="primary",
    icon=":material/play_arrow:",
    key="start_refresh",
    disabled=not pipeline_up,
    help=None if pipeline_up else "The pipeline service is not answering; this button comes back when it does.",
):
    start_refresh(job, options, kind)

if "tracked_run" not in st.session_state and pipeline_up:  # someone else's refresh may be running
    try:
        under_way = api.active_runs()
    except DagsterError:
        under_way = []
    if under_way:
        st.session_state["tracked_run"] = under_way[0].run_id


tracked = st.session_state.get("tracked_run")
if tracked:
    if note := st.session_state.get("follow_note"):
        st.info(note, icon=":material/hourglass_top:")
    elif reads := st.session_state.get("refresh_reads"):
        whole = st.session_state.get("refresh_whole", "customers and products whole")
        st.caption(f"This refresh reads {reads}; {whole}.")

    @st.fragment(run_every=2)
    def follow() -> None:
        status = run_view.show_run(api, conn, tracked)
        if status in FINISHED_STATUSES and st.session_state.get("finished_run") != tracked:
            st.session_state["finished_run"] = tracked
            st.rerun()  # once, so the page stops polling and shows the final state

    if st.session_state.get("finished_run") == tracked:
        run_view.show_run(api, conn, tracked)
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


def as_uploads(files) -> list[uploads.Upload]:
    return [uploads.Upload(f.name, f.getvalue()) for f in files]


def refresh_under_way() -> bool:
    if not pipeline_up:
        return False
    try:
        return bool(api.active_runs())
    except DagsterError:
        return False


def accept_files(files, threshold_now: float, then: str, signature: tuple) -> None:
    """Check again and swap the files in (never under a running refresh); then start a refresh or leave it."""
    access.require_operator()  # the role at the moment of acting
    if refresh_under_way():
        st.warning(
            "A refresh is reading the data folder right now: accept the files when it has finished.",
            icon=":material/hourglass_top:",
        )
        return
    try:
        verdict, done = uploads.accept(as_uploads(files), data_dir, threshold_now, LIMITS, limit_mb * 1_000_000)
    except OSError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if done is None:  # the folder changed since the check, and the files no longer pass
        st.session_state["upload_check"] = (signature, verdict)
        st.rerun()
    note = f"Accepted {upload_view.file_names(done.written)}"
    if done.kept.files:
        note += f"; the files they replace are kept ({upload_view.file_names(n for n, _ in done.kept.files)})"
    st.session_state["upload_note"] = note + "."
    st.session_state["upload_slot"] = slot + 1  # a fresh, empty uploader
    st.session_state.pop("upload_check", None)
    if then == "start" and pipeline_up:
        st.session_state.pop("finished_run", None)
        start_refresh("complete_pipeline_job", options, kind)
        st.session_state["upload_note"] += " A refresh has started: follow it above."
    else:
        st.session_state["upload_note"] += " The next refresh reads them."
    st.rerun()


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
    upload_view.show_check(verdict)
    if verdict.accepted:
        then = st.radio(
            "Once accepted",
            ["start", "wait"],
            format_func={"start": "Start a refresh now", "wait": upload_view.automatic_words(api, pipeline_up)}.get,
            key="after_upload",
            disabled=not pipeline_up,
            index=0 if pipeline_up else 1,
        )
        if st.button("Accept these files", type="primary", icon=":material/upload_file:", key="accept_upload"):
            accept_files(chosen, threshold_now, then, signature)

# --- 3. earlier files ---------------------------------------------------------------------------------
upload_view.kept_sets_panel(data_dir)
