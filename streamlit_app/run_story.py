"""A refresh in a business user's words: what each job and step does, how far a run is, and what changed.

Job and step keys stay technical (they are Dagster's names, shown beside the words for engineers);
everything headline-level on the Refresh page comes from here. No Streamlit import: the page draws
these, the tests read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamlit_app.dagster_api import Run

# job -> (short label, what it does)
JOB_CHOICES = {
    "complete_pipeline_job": (
        "Refresh the data and the model",
        "read the exports, check their quality, prepare them and train a new model",
    ),
    "ingestion_job": (
        "Check the exports only",
        "read the exports and run the quality checks; the model stays as it is",
    ),
}

STEP_LABELS = {
    "raw_data": "Read the exports and check their quality",
    "raw_transactions": "Read the purchase files and check their quality",
    "validation_report": "Score the data quality",
    "validation_report_quality_gate": "Decide whether the data is good enough to train on",
    "prepared_data": "Clean and prepare the customers and products",
    "prepared_transactions": "Clean and prepare the purchases",
    "feature_tables": "Build customer and product profiles",
    "collaborative_filtering_model": "Train and measure the new model",
    "user_recommendations": "Write every customer's lists",
}

STEP_STATUS = {
    "SUCCESS": "done",
    "FAILURE": "failed",
    "SKIPPED": "skipped (an earlier step stopped the run)",
    "IN_PROGRESS": "running",
    "NOT_STARTED": "waiting",
    "UNKNOWN": "unknown",
}

TABLE_WORDS = {"users": "Customers", "products": "Products", "transactions": "Purchases"}
WAITING = ("QUEUED", "NOT_STARTED", "STARTING")


def job_label(job: str) -> str:
    return JOB_CHOICES.get(job, (job.replace("_", " ").capitalize(), ""))[0]


def step_label(key: str) -> str:
    return STEP_LABELS.get(key, key.replace("_", " ").capitalize())


def duration_words(seconds: float | None) -> str:
    """'4.2 s', '3 min 05 s', '1 h 02 min'; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size_words(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,} bytes"


def progress(run: Run) -> tuple[float, str]:
    """How far a run is (0-1) and the sentence that says so."""
    steps = run.steps
    done = sum(s.status in ("SUCCESS", "FAILURE", "SKIPPED") for s in steps)
    if run.status in WAITING:
        return 0.0, "Waiting for the pipeline to start…"
    if run.status == "CANCELING":
        return done / max(len(steps), 1), "Stopping the refresh…"
    current = next((s for s in steps if s.status == "IN_PROGRESS"), None)
    if current is None:
        return done / max(len(steps), 1), f"Running: {done} step{'s' if done != 1 else ''} done…"
    return (
        done / max(len(steps), 1),
        f"Running: {step_label(current.key).lower()} ({done} step{'s' if done != 1 else ''} done)…",
    )


def steps_rows(run: Run) -> list[dict]:
    """One row per step: what it does, how it went, how long it took, and its technical key."""
    return [
        {
            "step": step_label(s.key),
            "status": STEP_STATUS.get(s.status, s.status.lower()),
            "took": duration_words(s.duration),
            "key": s.key,
        }
        for s in run.steps
    ]


@dataclass(frozen=True)
class Change:
    """One figure before and after a run (None: not known, e.g. the first run)."""

    label: str
    before: float | None
    after: float | None
    help: str
    kind: str = "count"  # count | score | share

    def shown(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.kind == "count":
            return f"{value:,.0f}"
        if self.kind == "share":
            return f"{value:.0%}"
        return f"{value:.1f}"

    @property
    def delta(self) -> str | None:
        """The change as shown ("+3", "-1.2 points", "no change"); None when there is nothing to compare."""
        if self.before is None or self.after is None:
            return None
        diff = self.after - self.before
        if self.kind == "count":
            return f"{diff:+,.0f}" if diff else "no change"
        points = diff * 100 if self.kind == "share" else diff
        return f"{points:+.1f} points" if abs(points) >= 0.05 else "no change"


COUNTED = (("Customers", "raw_users"), ("Products", "raw_products"), ("Purchases", "raw_transactions"))
PER_FILE_ASSETS = ("raw_transactions",)  # one record per purchase file a run read


def per_run(history: list[dict]) -> list[dict]:
    """One entry per run from a per-file history (newest first); its records: the lines of all purchase files.

    Every file's record carries what all current files held after its run (`all_records`); older records
    without it count as they are.
    """
    runs, seen = [], set()
    for entry in history:
        if entry["run_id"] in seen:
            continue
        seen.add(entry["run_id"])
        metadata = dict(entry["metadata"])
        if "all_records" in metadata:
            metadata["records"] = metadata["all_records"]
        runs.append({**entry, "metadata": metadata})
    return runs


def _this_and_before(history: list[dict], run_id: str) -> tuple[dict | None, dict | None]:
    """The run's materialization of an asset and the one before it (history is newest first)."""
    for index, entry in enumerate(history):
        if entry["run_id"] == run_id:
            return entry, (history[index + 1] if index + 1 < len(history) else None)
    return None, None


def _purchases_counted(reports: list[dict], run_id: str) -> tuple[dict | None, dict | None]:
    """The purchase lines of all files as the run's quality report and the one before it counted them."""
    after, before = _this_and_before(reports, run_id)
    if after is None or "purchase_records" not in after["metadata"]:
        return None, None

    def counted(entry: dict | None) -> dict | None:
        value = (entry or {}).get("metadata", {}).get("purchase_records")
        return None if value is None else {**entry, "metadata": {"records": value}}

    return counted(after), counted(before)


def _hit_rate(metadata: dict) -> float | None:
    try:
        return float(metadata["metrics"]["new"]["svd"]["hit_rate"])
    except (KeyError, TypeError, ValueError):
        return None


def changes(histories: dict[str, list[dict]], run_id: str) -> list[Change]:
    """Before → after for what a run wrote: rows read, the quality score, the model's hit rate.

    `histories` maps an asset to its materializations, newest first (DagsterAPI.materializations).
    """
    found = []
    for label, asset in COUNTED:
        history = histories.get(asset, [])
        after, before = _this_and_before(per_run(history) if asset in PER_FILE_ASSETS else history, run_id)
        if after is None and asset == "raw_transactions":  # no purchase file read: as the quality report counted
            after, before = _purchases_counted(histories.get("validation_report", []), run_id)
        if after is not None:
            found.append(
                Change(
                    label,
                    (before or {}).get("metadata", {}).get("records"),
                    after["metadata"].get("records"),
                    f"Rows read from the exports ({asset}), before and after this refresh.",
                )
            )
    after, before = _this_and_before(histories.get("validation_report", []), run_id)
    if after is not None:
        found.append(
            Change(
                "Quality score",
                (before or {}).get("metadata", {}).get("quality_score"),
                after["metadata"].get("quality_score"),
                "Share of all rows that break no data-quality rule, in percent (validation_report).",
                "score",
            )
        )
    after, before = _this_and_before(histories.get("collaborative_filtering_model", []), run_id)
    if after is not None:
        found.append(
            Change(
                "Hit rate of the new model",
                _hit_rate(before["metadata"]) if before else None,
                _hit_rate(after["metadata"]),
                "For this share of customers, something they bought next (in the held-out latest purchases) was "
                "in their top-10 list; compared with the previous model.",
                "share",
            )
        )
    return found


def model_verdict(found: list[Change]) -> str | None:
    """'better than / as good as / worse than the previous model', from the hit rate."""
    model = next((c for c in found if c.label.startswith("Hit rate")), None)
    if model is None or model.after is None:
        return None
    if model.before is None:
        return "This is the first model measured here."
    if abs(model.after - model.before) < 0.005:
        return "The new model finds next purchases about as often as the previous one."
    better = model.after > model.before
    return f"The new model finds next purchases {'more' if better else 'less'} often than the previous one."


def failure_markdown(message: str | None) -> str:
    """A failure explanation as wrapped markdown: sentences as paragraphs, the worst problems as a list.

    The text is the pipeline's (file names, rule names, underscores): markdown specials are escaped so it
    shows as written.
    """
    from streamlit_app.tables import plain

    if not message:
        return "The pipeline did not say why."
    parts: list[str] = []
    for raw in message.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("- "):  # an indented item (a file's own problems) stays under its file
            parts.append(("    " if raw.startswith("  ") else "") + "- " + plain(line[2:]))
        else:
            parts.append(("\n" if parts and parts[-1].lstrip().startswith("- ") else "") + plain(line) + "\n")
    return "\n".join(parts)
