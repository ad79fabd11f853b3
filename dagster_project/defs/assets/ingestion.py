"""Ingestion: users and products read whole (unless unchanged); each transactions file read as its own partition.

Users and products are read whole (`raw_data`: one step, both on threads, their rules run while the
frames are in memory), except by a refresh of new data only that finds their files byte for byte those the
stored tables came from: that run records the stored tables again (defs/whole_tables.py). Transactions
are what grows: `raw_transactions` has one partition per export file (see dagster_project/transaction_files.py)
and a run reads only the files in its range, in one step (`BackfillPolicy.single_run`). The transactions
rules run per file, against the current users and products; a line repeated across files is found from the
row hashes kept beside each file. Each file's table, hashes, rule result and masks are stored per partition
(transaction_store).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from dagster_project import data_files, ingest, repeated_lines, transaction_files, transaction_store, validation
from dagster_project.contract import PRODUCTS, TRANSACTIONS, USERS
from dagster_project.defs import rule_results, step_log, whole_tables
from dagster_project.defs.automation import INPUT_FINGERPRINT_TAG
from dagster_project.defs.checks import check_results, rule_check_specs
from dagster_project.defs.freshness import FRESHNESS_POLICY
from dagster_project.defs.metadata import file_metadata, table_out
from dagster_project.defs.partitions import (
    SINGLE_RUN,
    TRANSACTION_FILES,
    check_named_files,
    current_keys,
    new_data_run,
    step_keys,
    sync,
)
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import InputLimitsResource
from dagster_project.fileio import folders_synced_once, sha256_of, write_json, write_parquet
from dagster_project.freshness import WATCHED_ASSETS

# Entity -> its raw table's asset name.
RAW_TABLES = {spec.name: f"raw_{spec.name}" for spec in (USERS, PRODUCTS, TRANSACTIONS)}
WHOLE_TABLES = {entity: RAW_TABLES[entity] for entity in ("users", "products")}
OUTS = {
    "users": ("Users from every users*.csv, merged (duplicates kept).", "raw/users/{date}/users_merged.parquet"),
    "products": ("Products from products*.json.", "raw/products/{date}/products.parquet"),
}
# The list of files the last complete read stored (the unpartitioned materialization's file).
FILES_MANIFEST = "raw/transactions/files.json"
# The data folder as the last `raw_data` scanned it (name -> [mtime_ns, size, sha256]), with the run and the
# customers' and products' reference: the next scan hashes only files that changed, `raw_transactions` none.
SCAN_FILE = "raw/data_files.json"


@dg.multi_asset(
    outs={
        RAW_TABLES[entity]: table_out(
            description, path, FRESHNESS_POLICY if RAW_TABLES[entity] in WATCHED_ASSETS else None
        )
        for entity, (description, path) in OUTS.items()
    },
    check_specs=rule_check_specs(WHOLE_TABLES),
    group_name="ingestion",
    name="raw_data",
)
def raw_data(
    context: dg.AssetExecutionContext, paths: RecoMartPaths, input_limits: InputLimitsResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Read the users and products exports and store them as Parquet; run their data-quality rules.

    Also keeps the transactions files' partitions in step with the data folder (new files added, gone
    ones dropped with their stored tables), so every run, however started, sees the folder as it is.
    """
    data_dir, storage, limits = paths.data, paths.storage, input_limits.limits()
    check_named_files(context, paths)  # a purchase file the run names and the folder lost: say so before reading
    # A purchase file whose size and modification time are those of the last run's scan is not hashed again
    # (as the sensor does). The customers' and products' exports are: their stored tables are used again only
    # for the same bytes, and they are small beside the purchases (24 MB at 10M purchases, about 0.05 s).
    # Recorded on the run before reading: the sensor starts no second run for these files.
    previous = data_files.state_of(transaction_store.read_json(storage / SCAN_FILE))
    scanned = data_files.scan(data_dir, data_files.forget(previous, data_dir, (USERS, PRODUCTS)))
    fingerprint = data_files.fingerprint(scanned)
    context.instance.add_run_tags(context.run_id, {INPUT_FINGERPRINT_TAG: fingerprint})
    # On a refresh of new data only, exports byte for byte those an earlier run read (same limits, same code):
    # its tables, rule results and figures are this run's too (whole_tables.py); nothing read or written again.
    if new_data_run(context) and (reused := _earlier_tables(context, paths, scanned, fingerprint, limits)):
        yield from reused
        return
    lines = step_log.Lines(context)  # one log entry for both tables' files
    lines.add(f"Reading exports from {data_dir}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            spec.name: pool.submit(ingest.read_entity, data_dir, spec, lines.add, limits) for spec in (USERS, PRODUCTS)
        }
        try:
            frames = {entity: future.result() for entity, future in futures.items()}
        except ingest.DataInputError as exc:  # the message names the file and the fix: show it, not a traceback
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        finally:
            lines.log()
    sync(context, paths)
    # What this run's purchases are judged against: the customers' and products' files as read here. One
    # that changed while it was read matches no later scan, so every purchase file judged against it is read
    # again by the next refresh. `raw_transactions` takes the files' sha256 from here instead of hashing again.
    after = data_files.scan(data_dir, data_files.forget(scanned, data_dir, (USERS, PRODUCTS)))
    reference = transaction_files.reference(scanned)
    if transaction_files.reference(after) != reference:
        reference = f"changed while run {context.run_id} read them"
    write_json({"run_id": context.run_id, "reference": reference, "files": after}, storage / SCAN_FILE)
    raw = validation.Frames(frames["users"], frames["products"], pd.DataFrame(), limits=limits)
    report = validation.validate(raw, ("users", "products"))
    # stored before the tables are recorded: tables recorded by a run mean its rule results are complete
    rule_results.store(paths, report, context.run_id, raw.masks)
    for entity, frame in frames.items():
        yield dg.Output(
            frame,
            output_name=RAW_TABLES[entity],
            metadata={
                "source_files": sorted(frame[ingest.SOURCE_COLUMN].unique().tolist()),
                "input_fingerprint": fingerprint,
                whole_tables.MADE_FROM: whole_tables.made_from(files=reference, limits=limits),
            },
        )
    yield from check_results(report, WHOLE_TABLES)


def _earlier_tables(
    context: dg.AssetExecutionContext,
    paths: RecoMartPaths,
    scanned: data_files.FileState,
    fingerprint: str,
    limits: object,
) -> list[dg.Output | dg.AssetCheckResult] | None:
    """`raw_data`'s outputs and checks taken from the earlier run that read these same exports, or None: read them.

    Its rule results and masks are stored again under this run (the steps after it take them by run).
    """
    reference = transaction_files.reference(scanned)
    source = whole_tables.made_from(files=reference, limits=limits)
    earlier = whole_tables.stored(context.instance, paths.storage, tuple(WHOLE_TABLES.values()), source)
    kept = rule_results.stored_for(paths, earlier.writer) if earlier else None
    if earlier is None or kept is None:
        return None
    sync(context, paths)
    write_json({"run_id": context.run_id, "reference": reference, "files": scanned}, paths.storage / SCAN_FILE)
    report, masks = kept
    rule_results.store(paths, report, context.run_id, masks)
    context.log.info(
        f"Customers and products: the exports in {paths.data} are byte for byte those run {earlier.origin[:8]} "
        "read, so its tables, rule results and figures are used again (nothing read, checked or written twice)."
    )
    outputs: list[dg.Output | dg.AssetCheckResult] = [
        dg.Output(
            earlier.outputs[name],
            output_name=name,
            metadata={
                **earlier.outputs[name].recorded,
                "input_fingerprint": fingerprint,
                whole_tables.MADE_FROM: source,
                whole_tables.REUSED_FROM: earlier.origin,
            },
        )
        for name in WHOLE_TABLES.values()
    ]
    return [*outputs, *check_results(report, WHOLE_TABLES)]


def _reference(context: dg.AssetExecutionContext, data_dir, storage) -> tuple[str, data_files.FileState]:
    """What the purchases are judged against (`transaction_files.reference`), and the data folder's scan.

    Both as `raw_data` saved them in the run that read the customers and products this step judges
    against; when that run saved none (an older storage), the customers' and products' files hashed now.
    """
    saved = transaction_store.read_json(storage / SCAN_FILE) or {}
    users = context.instance.get_latest_materialization_event(dg.AssetKey(RAW_TABLES["users"]))
    if users is not None and saved.get("run_id") == users.run_id and isinstance(saved.get("reference"), str):
        return saved["reference"], data_files.state_of(saved)
    scanned = {p.name: [0, 0, sha256_of(p)] for spec in (USERS, PRODUCTS) for p in ingest.discover(data_dir, spec)}
    return transaction_files.reference(scanned), {}


@dg.asset(
    partitions_def=TRANSACTION_FILES,
    backfill_policy=SINGLE_RUN,
    check_specs=rule_check_specs({"transactions": RAW_TABLES["transactions"]}),
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    freshness_policy=FRESHNESS_POLICY if "raw_transactions" in WATCHED_ASSETS else None,
)
def raw_transactions(
    context: dg.AssetExecutionContext,
    paths: RecoMartPaths,
    input_limits: InputLimitsResource,
    raw_users: pd.DataFrame,
    raw_products: pd.DataFrame,
) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization | dg.AssetCheckResult]:
    """Transactions from transactions*.csv, one partition per file: read, checked by the rules, stored.

    The referential rules (customer and product known) judge each file against the users and products
    read in this run; a line repeated in an earlier file (by name) counts as repeated. The checks on this
    asset describe the files this run read; each file's quality score is in its partition's metadata.
    """
    keys, partitioned = step_keys(context, paths)
    if not keys:
        raise dg.Failure(description=f"No transactions file to read in {paths.data}.", allow_retries=False)
    data_dir, storage, limits = paths.data, paths.storage, input_limits.limits()
    try:
        files = {p.name: p for p in ingest.discover(data_dir, TRANSACTIONS)}
        reference, known = _reference(context, data_dir, storage)
    except ingest.DataInputError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    in_run = set(keys)
    # Every file before the last one read, in name order: a line of an earlier file makes a line repeated.
    # Files this run does not read give their stored hashes; files it reads, the hashes computed below.
    others = [k for k in current_keys(context.instance) if k not in in_run and k < keys[-1]]
    earlier, stored_before = repeated_lines.EarlierLines(), sorted(others)
    lines = step_log.Lines(context)  # one log entry for all files (each file's figures: its partition's metadata)
    lines.add(f"Reading {len(keys)} purchase file(s): {', '.join(keys)[:300]}")
    parts, per_file, lookups = [], {}, {}  # lookups: the customers' and products' ids as Arrow text, once for all files
    for key in keys:
        due = []
        while stored_before and stored_before[0] < key:
            due.append(stored_before.pop(0))
        # left on disk: a lookup reads their first hashes a block at a time, and only matching lines whole
        earlier.add_stored(transaction_store.hashes_path(storage, k) for k in due)
        path = files.get(key)
        if path is None:
            raise dg.Failure(description=transaction_files.not_in_folder(key, data_dir), allow_retries=False)
        entry = known.get(key)
        if not data_files.unchanged(path, entry):  # not as this run's scan saw it: hashed now, before reading
            entry = [*(data_files.stat_of(path) or [-1, -1]), sha256_of(path)]
        try:
            frame = ingest.read_file(path, TRANSACTIONS, limits)
        except ingest.DataInputError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        # a file that changed while it was read is stored under no content's sha256: the next refresh reads it
        sha256 = entry[2] if data_files.unchanged(path, entry) else f"changed while run {context.run_id} read it"
        hashes = repeated_lines.row_hashes(frame.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN]))
        frames = validation.Frames(
            raw_users,
            raw_products,
            frame,
            limits,
            earlier_rows=earlier if len(earlier) else None,
            row_hashes=hashes,
            lookups=lookups,
        )
        part = validation.validate(frames, ("transactions",))
        with folders_synced_once():  # the file's tables; its manifest, written after, says they are complete
            write_parquet(frame, transaction_store.raw_path(storage, key))
            write_parquet(hashes, transaction_store.hashes_path(storage, key))
            rule_results.store_partition(paths, key, part, context.run_id, frames.masks["transactions"])
        write_json(
            {"file": key, "sha256": sha256, "rows": len(frame), "run_id": context.run_id, "reference": reference},
            transaction_store.raw_manifest(storage, key),
        )
        earlier.add(hashes)
        parts.append(part)
        per_file[key] = {
            **file_metadata(transaction_store.raw_path(storage, key), records=len(frame), frame=frame),
            "source_file": key,
            "file_sha256": sha256,
            "quality_score": float(part.quality_score),
            "invalid_records": int(part.invalid_records),
        }
        lines.add(f"Read {len(frame)} records from {key}: quality score {part.quality_score}")
        del frame, frames
    lines.log()
    summary = validation.combine(parts)
    # on every file's record too: the newest record of the asset tells what its run read, and how many
    # purchase lines all current files hold now (the files not read: as their stored manifests say)
    not_read = [k for k in current_keys(context.instance) if k not in in_run]
    held = sum(
        (transaction_store.read_json(transaction_store.raw_manifest(storage, k)) or {}).get("rows", 0) for k in not_read
    )
    run_records = int(summary.records.get("transactions", 0))
    run_figures = {"run_records": run_records, "run_files": len(per_file), "all_records": run_records + held}
    for metadata in per_file.values():
        metadata.update(run_figures)
    if partitioned:
        for key, metadata in per_file.items():
            context.add_asset_metadata(metadata, partition_key=key)
        yield dg.MaterializeResult()
    else:
        # A run without partition tags read every file: each file's partition is recorded as materialized,
        # and the run's own record names the list of files it stored.
        for key, metadata in per_file.items():
            yield dg.AssetMaterialization(asset_key=RAW_TABLES["transactions"], partition=key, metadata=metadata)
        manifest = write_json(
            {k: {"rows": m["records"], "sha256": m["file_sha256"]} for k, m in per_file.items()},
            storage / FILES_MANIFEST,
        )
        yield dg.MaterializeResult(
            metadata={
                **file_metadata(manifest, records=summary.records.get("transactions", 0)),
                "source_files": list(per_file),
                "quality_score": float(summary.quality_score),
                **run_figures,
            }
        )
    yield from check_results(summary, {"transactions": RAW_TABLES["transactions"]})
