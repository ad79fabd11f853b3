"""How the Refresh page shows an upload's check, what happens after accepting, and the files kept from earlier
uploads (the logic is dagster_project/uploads.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dagster_project import uploads
from streamlit_app import access, run_story, tables
from streamlit_app.dagster_api import DagsterAPI, DagsterError


def file_names(names) -> str:
    """File names for a sentence, shown as written (a name is the uploader's text: never markdown or a link)."""
    return ", ".join(tables.plain(n) for n in names)


def row_words(rows: int | None) -> str:
    """Rows as a table cell shows them (never 'None')."""
    return "cannot be read" if rows is None else f"{rows:,}"


def automatic_words(api: DagsterAPI, pipeline_up: bool) -> str:
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


def show_check(verdict: uploads.UploadCheck) -> None:
    """The verdict first, then each file, the score against the gate, and every broken rule with example rows."""
    report = verdict.report
    if verdict.accepted:
        st.success(
            f"**These files can be used.** A refresh would give them a quality score of {report.quality_score:.1f} "
            f"(the minimum is {report.min_quality_score:g}).",
            icon=":material/check_circle:",
        )
    else:
        reasons = [tables.plain(r) for r in verdict.refusals]
        if report is not None and not report.gate_passed and report.quality_score < report.min_quality_score:
            reasons.append(
                f"The quality score would be {report.quality_score:.1f}, below the minimum of "
                f"{report.min_quality_score:g}: a refresh would stop before training. The rows that break a rule "
                "are listed below."
            )
        for below in report.files_below if report is not None else []:
            why = (
                f"every one of its {below.records:,} lines has a problem"
                if below.keeps_nothing
                else f"{below.invalid_records:,} of its {below.records:,} lines have a problem"
            )
            reasons.append(
                f"The purchase file {tables.plain(below.file)} would have a quality score of "
                f"{below.quality_score:.1f} on its own ({why}), below the minimum of {report.min_quality_score:g}: "
                "a refresh would stop before training. Is it the right export? The rows that break a rule are "
                "listed below."
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
            st.caption(f"{run_story.TABLE_WORDS[table]}: replaces {file_names(names)} (kept, and can be put back).")
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


def kept_sets_panel(data_dir: Path) -> None:
    """The files earlier uploads replaced, and putting a set back after a confirm step (operators only)."""
    kept = uploads.kept_sets(data_dir)
    if not kept:
        return
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
                f"This puts back {file_names(n for n, _ in chosen_set.files) or 'no files'} in place of the current "
                f"{kinds} files, which are kept in turn. The next refresh reads them.",
                icon=":material/history:",
            )
            yes, no = st.columns(2)
            if yes.button("Yes, put them back", type="primary", key="restore_confirm"):
                access.require_operator()
                done = uploads.restore(data_dir, pending, datetime.now(UTC))
                st.session_state.pop("restore_pending", None)
                st.session_state["upload_note"] = (
                    f"Put back {file_names(done.written) or 'the earlier files'}. Start a refresh to use them."
                )
                st.rerun()
            if no.button("Cancel", key="restore_cancel"):
                st.session_state.pop("restore_pending", None)
                st.rerun()
