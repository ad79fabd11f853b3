"""Running the complete job in process, as a test needs it: over every file, or over a range of files."""

from __future__ import annotations

import dagster as dg

from dagster_project import data_files, transaction_files, transaction_store
from dagster_project.definitions import defs
from tests.workspace import Workspace


def run_complete(ws: Workspace, instance: dg.DagsterInstance, start: str | None = None, end: str | None = None):
    """The complete pipeline; with `start`/`end`, over that range of purchase files (they must be partitions)."""
    return defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=ws.run_config(),
        instance=instance,
        tags=transaction_files.range_tags(start, end),
        raise_on_error=False,
    )


def refresh_new_data(ws, instance: dg.DagsterInstance, run_config: dict | None = None):
    """What the nightly schedule does: add the new files' partitions, then run the complete job over them."""
    scanned = data_files.scan(ws.data)
    stored = transaction_store.prepared_state(ws.storage, transaction_files.reference(scanned))
    plan = transaction_files.plan(
        transaction_files.current_files(scanned),
        stored,
        instance.get_dynamic_partitions(transaction_files.PARTITIONS_NAME),
    )
    if plan.add:
        instance.add_dynamic_partitions(transaction_files.PARTITIONS_NAME, plan.add)
    result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=run_config or ws.run_config(),
        instance=instance,
        tags={**plan.tags(), transaction_files.REFRESH_KIND_TAG: transaction_files.NEW_DATA},
        raise_on_error=False,
    )
    assert result.success
    return result
