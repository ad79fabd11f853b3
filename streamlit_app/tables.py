"""DataFrames the pages show, built from the Dagster API's answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from dagster_project.model_card import LIST_KINDS, ModelCard
from streamlit_app import verdict
from streamlit_app.dagster_api import JOBS, Run

STAGES = {
    "users": ("raw_users", "prepared_users", "user_features"),
    "products": ("raw_products", "prepared_products", "item_features"),
    "transactions": ("raw_transactions", "prepared_transactions", "interaction_matrix"),
}


def when(epoch: float | None) -> pd.Timestamp | None:
    return pd.Timestamp(epoch, unit="s", tz="UTC") if epoch else None


def ago(epoch: float | None, now: float | None = None) -> str:
    if not epoch:
        return "never"
    seconds = (now or datetime.now(UTC).timestamp()) - epoch
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    rows = [
        {
            "job": r.job_name,
            "status": r.status,
            "start": when(r.start_time or r.created),
            "duration_s": round(r.duration, 1) if r.duration is not None else None,
            "launched_by": r.launched_by,
            "run_id": r.run_id,
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=["job", "status", "start", "duration_s", "launched_by", "run_id"])


def steps_frame(run: Run) -> pd.DataFrame:
    rows = [
        {
            "step": step.key,
            "status": step.status,
            "duration_s": round(step.duration, 2) if step.duration is not None else None,
        }
        for step in run.steps
    ]
    return pd.DataFrame(rows, columns=["step", "status", "duration_s"])


def quality_frame(materializations: list[dict]) -> pd.DataFrame:
    rows = [
        {"time": when(m["timestamp"]), "quality_score": m["metadata"].get("quality_score"), "run_id": m["run_id"]}
        for m in materializations
        if m["metadata"].get("quality_score") is not None
    ]
    return pd.DataFrame(rows, columns=["time", "quality_score", "run_id"]).sort_values("time")


def stage_counts(latest: dict[str, dict | None]) -> pd.DataFrame:
    """Records per table and stage, from each asset's latest materialization."""
    rows = []
    for table, assets in STAGES.items():
        for stage, asset in zip(("raw", "prepared", "features"), assets):
            found = latest.get(asset)
            if found and found["metadata"].get("records") is not None:
                rows.append({"table": table, "stage": stage, "records": int(found["metadata"]["records"])})
    return pd.DataFrame(rows, columns=["table", "stage", "records"])


def dropped_frame(latest: dict[str, dict | None]) -> pd.DataFrame:
    rows = []
    for table in STAGES:
        found = latest.get(f"prepared_{table}")
        for reason, count in ((found or {}).get("metadata", {}).get("dropped_by_reason") or {}).items():
            rows.append({"table": table, "reason": reason, "rows": int(count)})
    return pd.DataFrame(rows, columns=["table", "reason", "rows"])


def metrics_frame(card: ModelCard) -> pd.DataFrame:
    """The model card's holdout metrics: one row per list and model, only for lists that were measured."""
    names = {"svd": "RecoMart SVD", "popularity": "Best-sellers", "buy_again": "Buy again"}
    rows = []
    for list_kind, models in card.metrics.items():
        for model, m in models.items():
            rows.append(
                {
                    "list": "new products" if list_kind == "new" else "with re-buys",
                    "model": names.get(model, model),
                    "NDCG@10": round(m.ndcg, 4),
                    "precision@10": round(m.precision, 4),
                    "recall@10": round(m.recall, 4),
                    "hit rate": round(m.hit_rate, 4),
                    "coverage": round(m.coverage, 4),
                    "users": m.users,
                }
            )
    return pd.DataFrame(
        rows, columns=["list", "model", "NDCG@10", "precision@10", "recall@10", "hit rate", "coverage", "users"]
    )


def not_measured(card: ModelCard) -> dict[str, str]:
    """Lists the card has no figures for, with the reason (too few customers to measure): never shown as 0."""
    return {kind: card.not_measured.get(kind, "not measured") for kind in LIST_KINDS if kind not in card.metrics}


def holdout_text(card: ModelCard) -> str:
    """How the card's figures were measured, in one sentence."""
    holdout = card.holdout
    if holdout.protocol == "random split":
        users = holdout.evaluated_users.get("new", 0)
        return (
            f"Measured on a random {holdout.test_share:.0%} of the purchases held out, because "
            f"time could not separate past from future purchases (too few customers bought on both sides of "
            f"the time cut); {users:,} customers evaluated."
        )
    if holdout.cutoff:
        return f"Measured on the purchases after {holdout.cutoff[:10]}."
    return "Not measured."


def update_text(card: ModelCard) -> str:
    """What was added to a model since its training, in one sentence (the card's figures are its training's)."""
    update = card.update
    if update is None:
        return ""
    files = ", ".join(update.files[-3:]) + (f" and {len(update.files) - 3:,} more" if len(update.files) > 3 else "")
    times = "once" if update.updates == 1 else f"{update.updates:,} times"
    newcomers = "one customer" if update.new_customers == 1 else f"{update.new_customers:,} customers"
    return (
        f"Brought up to date {times} since, without training again: {update.transactions:,} new purchases "
        f"({plain(files)}) added to the customers' histories, {newcomers} new to it; last on "
        f"{update.updated_at[:16].replace('T', ' ')} UTC. The figures above are from its training; the next full "
        "training measures it again."
    )


# What makes text a link, an image, HTML, a heading or emphasis (":" too: "http:" would become a link and
# ":name:" an icon); hyphens and full stops inside a name stay as they are.
MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:])")


def plain(text: object) -> str:
    """Text from the data (a customer's name, a search) shown as itself, never as markdown or a link."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


# --- runs in people's words --------------------------------------------------------------------
STATUS_WORDS = {
    "SUCCESS": "Succeeded",
    "FAILURE": "Failed",
    "CANCELED": "Stopped",
    "CANCELING": "Stopping",
    "STARTED": "Under way",
    "STARTING": "Starting",
    "QUEUED": "Waiting to start",
    "NOT_STARTED": "Waiting to start",
    "SKIPPED": "Skipped (an earlier step failed)",
    "IN_PROGRESS": "Under way",
}
STEP_WORDS = {
    "raw_data": "Read the exports and run the data checks",
    "raw_transactions": "Read the purchase files and run their checks",
    "validation_report": "Score the data quality",
    "validation_report_quality_gate": "Quality gate (stops training on poor data)",
    "prepared_users": "Prepare customers",
    "prepared_products": "Prepare products",
    "prepared_transactions": "Prepare purchases",
    "user_features": "Customer profiles",
    "item_features": "Product profiles",
    "interaction_matrix": "Who bought what",
    "collaborative_filtering_model": "Train and publish the model",
}


def job_label(job: str) -> str:
    """A job's name for people: the first part of its label in dagster_api.JOBS ('Complete pipeline')."""
    return JOBS.get(job, job.replace("_", " ").capitalize()).split(" (")[0]


def step_label(step: str) -> str:
    return STEP_WORDS.get(step, step.replace("_", " ").capitalize())


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def started_by(tags: dict[str, str]) -> str:
    """Who started a run, in words."""
    if "dagster/schedule_name" in tags:
        return "The daily schedule" if tags["dagster/schedule_name"] == "daily_pipeline" else "A schedule"
    if "dagster/sensor_name" in tags:
        return "New export files" if tags["dagster/sensor_name"] == "data_files_sensor" else "An automatic trigger"
    if tags.get("recomart/launched_by") == "app":
        return f"{tags.get('recomart/user') or 'Someone'} in the app"
    if "dagster/from_ui" in tags or "user" in tags:
        return "An engineer in the Dagster UI"
    return "An engineer (command line)"


def duration_words(seconds: float | None) -> str:
    return verdict.duration_words(seconds)


def start_words(epoch: float | None) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%d %b %Y %H:%M} UTC" if epoch else "–"


def plain_runs_frame(runs: list[Run]) -> pd.DataFrame:
    """Runs for people: job label, result, start, duration and starter in words; no empty cells."""
    rows = [
        {
            "What ran": job_label(r.job_name),
            "Result": status_words(r.status),
            "Started": start_words(r.start_time or r.created),
            "Took": duration_words(r.duration)
            if r.duration is not None
            else "still running"
            if r.status in ("STARTED", "STARTING", "CANCELING")
            else "–",
            "Started by": started_by(r.tags),
            "Run": r.run_id[:8],
            "seconds": round(r.duration, 1) if r.duration is not None else float("nan"),
            "run_id": r.run_id,
            "job": r.job_name,
            "status": r.status,
            "start": when(r.start_time or r.created),
        }
        for r in runs
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "What ran",
            "Result",
            "Started",
            "Took",
            "Started by",
            "Run",
            "seconds",
            "run_id",
            "job",
            "status",
            "start",
        ],
    )


def plain_steps_frame(run: Run) -> pd.DataFrame:
    rows = [
        {
            "Step": step_label(s.key),
            "Result": status_words(s.status),
            "Took": duration_words(s.duration) if s.duration is not None else "–",
            "seconds": round(s.duration, 2) if s.duration is not None else float("nan"),
            "step": s.key,
        }
        for s in run.steps
    ]
    return pd.DataFrame(rows, columns=["Step", "Result", "Took", "seconds", "step"])
