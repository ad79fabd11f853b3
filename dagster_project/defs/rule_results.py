"""The data-quality rules' result, computed once per run where the raw tables are read.

The rules need the raw frames, which the ingestion step has in memory, and `ingestion_job` (which has
no validation report) must still show the checks. So the ingestion step runs the rules, emits the
asset checks and stores the result here; `validation_report` reads it back instead of loading the
raw tables and running the rules a second time. The run id stored with it ties it to the raw tables
it describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import RecoMartPaths
from dagster_project.fileio import write_json
from dagster_project.validation import ValidationReport

RELATIVE_PATH = "validation/rule_results.json"


def store(paths: RecoMartPaths, report: ValidationReport, run_id: str) -> Path:
    return write_json({"run_id": run_id, "report": report.to_dict()}, paths.storage / RELATIVE_PATH)


def load(
    context: dg.AssetExecutionContext, paths: RecoMartPaths, raw_tables: Iterable[dg.AssetKey]
) -> ValidationReport:
    """The stored result, refused when it is not from the run that wrote the latest raw tables."""
    path = paths.storage / RELATIVE_PATH
    if not path.exists():
        raise dg.Failure(
            description=f"No rule results at {path}: the raw tables have not been read yet. Run the "
            f"complete pipeline (or ingestion_job first).",
            allow_retries=False,
        )
    stored = json.loads(path.read_text())
    for key in raw_tables:
        event = context.instance.get_latest_materialization_event(key)
        if event is not None and event.run_id != stored["run_id"]:
            raise dg.Failure(
                description=f"The rule results at {path} are from run {stored['run_id'][:8]}, but "
                f"{key.to_user_string()} was last written by run {event.run_id[:8]}: run "
                f"the complete pipeline (or ingestion_job) again.",
                allow_retries=False,
            )
    return ValidationReport.from_dict(stored["report"])
