"""A refresh of new data only, as the sensor and the schedule request it: partitions to add and drop, the run.

The plan (which files are new, changed or gone, and the range to read) is `transaction_files.plan`, over
the data folder's files and what storage prepared from them; this module turns it into Dagster's terms.
"""

from __future__ import annotations

import dagster as dg

from dagster_project import data_files, transaction_files, transaction_store
from dagster_project.defs.partitions import TRANSACTION_FILES, current_keys
from dagster_project.defs.resources import RecoMartPaths

REFRESH_KIND_TAG = transaction_files.REFRESH_KIND_TAG


def plan(
    instance: dg.DagsterInstance, paths: RecoMartPaths, state: data_files.FileState | None = None
) -> transaction_files.Plan | None:
    """The new-data plan now; None when a file's name cannot be a key (the run then names it)."""
    state = state if state is not None else data_files.scan(paths.data)
    files = transaction_files.current_files(state)
    stored = transaction_store.prepared_state(paths.storage, transaction_files.reference(state))
    try:
        return transaction_files.plan(files, stored, current_keys(instance))
    except transaction_files.FileNameError:
        return None


def partition_requests(found: transaction_files.Plan | None) -> list:
    """Add the new files' partitions; delete the gone files' (their stored tables go in the next run)."""
    if found is None:
        return []
    requests: list = []
    if found.add:
        requests.append(TRANSACTION_FILES.build_add_request(found.add))
    if found.delete:
        requests.append(TRANSACTION_FILES.build_delete_request(found.delete))
    return requests


def apply(instance: dg.DagsterInstance, found: transaction_files.Plan | None) -> None:
    """The same as `partition_requests`, done at once (the schedule has no partition requests)."""
    if found is None:
        return
    if found.add:
        instance.add_dynamic_partitions(transaction_files.PARTITIONS_NAME, found.add)
    for key in found.delete:
        instance.delete_dynamic_partition(transaction_files.PARTITIONS_NAME, key)


def run_request(found: transaction_files.Plan | None, run_key: str | None, tags: dict[str, str]) -> dg.RunRequest:
    """The complete refresh over the new files' range; without a file to read, everything but those two assets."""
    tags = {**tags, REFRESH_KIND_TAG: transaction_files.NEW_DATA}
    if found is not None and found.reads_files:
        return dg.RunRequest(run_key=run_key, tags={**tags, **found.tags()})
    whole = transaction_files.WHOLE_DATA_ASSETS["complete_pipeline_job"]
    return dg.RunRequest(run_key=run_key, tags=tags, asset_selection=[dg.AssetKey(name) for name in whole])
