"""Running the complete job in process, as a test needs it: over every file, or over a range of files."""

from __future__ import annotations

import dagster as dg

from dagster_project import transaction_files
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
