"""The transactions files as Dagster dynamic partitions: the definition, a step's keys, keeping them in step.

See dagster_project/transaction_files.py for what a refresh reads and why one partition per file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import ingest, model_update, transaction_files, transaction_store
from dagster_project.contract import TRANSACTIONS
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.model_card import TrainingData

TRANSACTION_FILES = dg.DynamicPartitionsDefinition(name=transaction_files.PARTITIONS_NAME)
# Both partitioned assets read every file of a run in one step: a run over a range of files is one step.
SINGLE_RUN = dg.BackfillPolicy.single_run()


def current_keys(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(transaction_files.PARTITIONS_NAME))


def check_named_files(context: dg.AssetExecutionContext, paths: RecoMartPaths) -> None:
    """Fail at once, in words, when the run names a purchase file the data folder no longer holds.

    A refresh is planned (partition added, range tags set) before it starts; a file removed in between, or a
    partition key added by hand that names no file, would otherwise fail deep inside Dagster ("Nonexistent
    partition keys") once the first step has dropped its partition. The message names the file and the fix.
    """
    named = transaction_files.named_keys(context.run.tags)
    if not named:
        return
    try:
        names = {p.name for p in ingest.discover(paths.data, TRANSACTIONS)}
    except ingest.DataInputError:
        return  # no folder, no purchase file, a link leading out: reading the exports says so, naming it
    for key in named:
        if key not in names:
            raise dg.Failure(description=transaction_files.not_in_folder(key, paths.data), allow_retries=False)


def step_keys(context: dg.AssetExecutionContext, paths: RecoMartPaths) -> tuple[list[str], bool]:
    """The files this step reads, in file-name order, and whether the run names them (partition tags).

    A run without partition tags (`dagster job execute`, a test) reads every file: the complete refresh.
    A run naming a file whose partition is gone fails with the words of `check_named_files`.
    """
    known = set(current_keys(context.instance))
    for key in transaction_files.named_keys(context.run.tags):
        if key not in known:
            raise dg.Failure(description=transaction_files.not_in_folder(key, paths.data), allow_retries=False)
    if context.has_partition_key_range or context.has_partition_key:
        keys, partitioned = sorted(context.partition_keys), True
    else:
        keys, partitioned = sorted(current_keys(context.instance)), False
    for key in keys:  # keys become file names under storage: one added by hand must be a file's name
        try:
            transaction_files.check_key(key)
            transaction_store.raw_path(Path("."), key)
        except (transaction_files.FileNameError, ValueError):
            raise dg.Failure(
                description=transaction_files.not_in_folder(key, paths.data), allow_retries=False
            ) from None
    return keys, partitioned


def sync(context: dg.AssetExecutionContext, paths: RecoMartPaths) -> list[str]:
    """Make the partitions the data folder's transactions files: add new ones, drop gone ones (and their storage).

    The sensor, the schedule and the app add partitions before they start a run; this keeps a run started
    any other way (the CLI, the Dagster UI) right too. Errors name the file: a link leading outside the
    folder, no transactions file at all, a file name that cannot be a key.
    """
    try:
        names = [p.name for p in ingest.discover(paths.data, TRANSACTIONS)]
        for name in names:
            transaction_files.check_key(name)
    except (ingest.DataInputError, transaction_files.FileNameError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    plan = transaction_files.plan(dict.fromkeys(names, ""), {}, current_keys(context.instance))
    if plan.add:
        context.instance.add_dynamic_partitions(transaction_files.PARTITIONS_NAME, plan.add)
        context.log.info(f"New purchase files: {', '.join(plan.add)[:500]}")
    for key in plan.delete:
        context.instance.delete_dynamic_partition(transaction_files.PARTITIONS_NAME, key)
    for key in sorted(transaction_store.stored_keys(paths.storage) - set(names)):
        transaction_store.remove(paths.storage, key)
        context.log.info(f"{key} left the data folder: its stored purchases are removed")
    return plan.keys


def all_prepared(context: dg.AssetExecutionContext, paths: RecoMartPaths) -> pd.DataFrame:
    """Every file's prepared purchases (the whole history), for the features and the model."""
    keys = current_keys(context.instance)
    if missing := transaction_store.missing_prepared(paths.storage, keys):
        raise dg.Failure(
            description=f"{len(missing)} purchase file(s) are not prepared yet ({', '.join(missing)[:300]}): "
            "their last refresh stopped before preparation. Refresh with 'everything' (or new data only).",
            allow_retries=False,
        )
    if not keys:
        raise dg.Failure(description="No purchase file has been read yet: run the complete pipeline.")
    return transaction_store.load_prepared(paths.storage, keys)


def covered_now(
    context: dg.AssetExecutionContext, paths: RecoMartPaths, last_purchase: str | None = None
) -> TrainingData:
    """What the features and the model would learn from now: every file's prepared checksum, and the
    checksums of the customers and products this run prepared (their stored tables' bytes)."""
    files = transaction_store.prepared_checksums(paths.storage, current_keys(context.instance))
    parts = []
    for name in ("prepared_users", "prepared_products"):
        event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
        entry = event.asset_materialization.metadata.get("sha256") if event and event.asset_materialization else None
        parts.append(str(entry.value) if entry is not None else "")
    reference = "" if "" in parts else hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return model_update.training_data(files, reference, last_purchase)


def new_data_run(context: dg.AssetExecutionContext) -> bool:
    """Whether the run is a refresh of new data only (the sensor's, the schedule's, or the app's)."""
    return context.run.tags.get(transaction_files.REFRESH_KIND_TAG) == transaction_files.NEW_DATA
