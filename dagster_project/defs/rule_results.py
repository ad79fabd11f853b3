"""The data-quality rules' result, computed once per run where the raw tables are read.

The rules need the raw frames, which the ingestion step has in memory, and `ingestion_job` (which has
no validation report) must still show the checks. So the ingestion step runs the rules, emits the
asset checks and stores the result here; `validation_report` reads it back instead of loading the
raw tables and running the rules a second time. The run id stored with it ties it to the raw tables
it describes. The per-row rule masks are stored beside it (Parquet, one file per table, the run id in
the file's metadata), so preparation drops the rows the report counted without running the rules again.

Users and products are read whole every run (one result above); each transactions file is a partition
with a result and masks of its own (`store_partition`, under validation/partitions/), and
`validation_report` combines them into the whole data's score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project import transaction_store
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.fileio import atomic_path, write_json
from dagster_project.validation import ValidationReport

RELATIVE_PATH = "validation/rule_results.json"
MASKS_FOLDER = "validation/rule_masks"
RUN_ID_KEY = b"recomart_run_id"


def _write_masks(frame: pd.DataFrame, run_id: str, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), RUN_ID_KEY: run_id.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def store(
    paths: RecoMartPaths, report: ValidationReport, run_id: str, masks: dict[str, pd.DataFrame] | None = None
) -> Path:
    for entity, frame in (masks or {}).items():
        _write_masks(frame, run_id, paths.storage / MASKS_FOLDER / f"{entity}.parquet")
    return write_json({"run_id": run_id, "report": report.to_dict()}, paths.storage / RELATIVE_PATH)


def store_partition(paths: RecoMartPaths, key: str, report: ValidationReport, run_id: str, masks: pd.DataFrame) -> None:
    """One transactions file's result and masks (the masks first: a result always has its masks)."""
    _write_masks(masks, run_id, transaction_store.masks_path(paths.storage, key))
    write_json({"run_id": run_id, "report": report.to_dict()}, transaction_store.result_path(paths.storage, key))


def load_partition(paths: RecoMartPaths, key: str) -> tuple[ValidationReport, str] | None:
    """One transactions file's stored result and the run that wrote it; None when it has none."""
    stored = transaction_store.read_json(transaction_store.result_path(paths.storage, key))
    if not stored:
        return None
    return ValidationReport.from_dict(stored["report"]), stored["run_id"]


def load_partition_masks(paths: RecoMartPaths, key: str, run_id: str) -> pd.DataFrame | None:
    """One file's masks when the run that read the file wrote them; None otherwise."""
    try:
        table = pq.read_table(transaction_store.masks_path(paths.storage, key))
    except (OSError, pa.ArrowException):
        return None
    return table.to_pandas() if (table.schema.metadata or {}).get(RUN_ID_KEY) == run_id.encode() else None


def load_masks(context: dg.AssetExecutionContext, paths: RecoMartPaths, raw_tables: Iterable[dg.AssetKey]) -> dict:
    """The rule masks of the run that wrote the latest raw tables; none (to be computed again) otherwise."""
    runs = {
        event.run_id
        for key in raw_tables
        if (event := context.instance.get_latest_materialization_event(key)) is not None
    }
    if len(runs) != 1:  # raw tables from different runs: no one run's masks describe them all
        return {}
    return _masks_of(paths, runs.pop())


def _masks_of(paths: RecoMartPaths, run_id: str) -> dict[str, pd.DataFrame]:
    """The stored rule masks that run `run_id` wrote, by table name (unreadable files skipped)."""
    masks = {}
    for path in sorted((paths.storage / MASKS_FOLDER).glob("*.parquet")):
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException):
            continue
        if (table.schema.metadata or {}).get(RUN_ID_KEY) == run_id.encode():
            masks[path.stem] = table.to_pandas()
    return masks


def stored_for(paths: RecoMartPaths, run_id: str) -> tuple[ValidationReport, dict[str, pd.DataFrame]] | None:
    """The customers' and products' result and masks exactly as run `run_id` stored them; None when it did not
    store them all (the masks are written first, the result last: a result of that run means its masks are there)."""
    stored = transaction_store.read_json(paths.storage / RELATIVE_PATH)
    if not isinstance(stored, dict) or stored.get("run_id") != run_id or "report" not in stored:
        return None
    return ValidationReport.from_dict(stored["report"]), _masks_of(paths, run_id)


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
