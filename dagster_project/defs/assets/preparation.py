"""Preparation: deduplicated, typed, encoded and normalized tables, with the rows dropped and why.

Users and products are prepared whole (a refresh of new data only takes the stored ones when their raw
tables and the settings are those they were made from); transactions per file (the partitions the run read),
each from its stored raw table and the rule masks stored with it.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from dagster_project import preparation, transaction_store
from dagster_project.defs import rule_results, step_log, whole_tables
from dagster_project.defs.assets import ingestion
from dagster_project.defs.assets.validation import validation_report
from dagster_project.defs.metadata import counts_table, file_metadata, table_out
from dagster_project.defs.partitions import SINGLE_RUN, TRANSACTION_FILES, new_data_run, step_keys
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import InputLimitsResource, PreparationConfig
from dagster_project.fileio import write_json, write_parquet
from dagster_project.validation import Frames

# The list of files the last complete preparation stored (the unpartitioned materialization's file).
FILES_MANIFEST = "prepared/transactions_files.json"

# Sign-up dates left out for being later than tomorrow: prepared customers are used again only when there are none.
JUDGED_BY_TODAY = "signup_dates_after_tomorrow"


@dg.multi_asset(
    outs={
        "prepared_users": table_out(
            "Unique users; invalid emails and ages cleared; gender and country encoded.", "prepared/users.parquet"
        ),
        "prepared_products": table_out(
            "Unique products; invalid prices cleared; category and brand encoded.", "prepared/products.parquet"
        ),
    },
    # The report is not read here: the edge puts preparation behind the blocking quality_gate on the report.
    # The raw tables are read only when they are prepared again (`_earlier_tables`: not when nothing changed).
    deps=[validation_report, *ingestion.WHOLE_TABLES.values()],
    group_name="preparation",
)
def prepared_data(
    context: dg.AssetExecutionContext,
    config: PreparationConfig,
    input_limits: InputLimitsResource,
    paths: RecoMartPaths,
) -> Iterator[dg.Output]:
    """Clean, encode and normalize users and products; count every dropped row under the rule it failed.

    When the raw tables are the very files an earlier preparation started from, with the same settings and
    code, that preparation's tables and figures are this run's (whole_tables.py): nothing is prepared again.
    """
    source = whole_tables.made_from(
        raw={name: _recorded_sha256(context, name) for name in ingestion.WHOLE_TABLES.values()},
        non_product_pattern=config.non_product_pattern,
        limits=input_limits.limits(),
    )
    outputs = ("prepared_users", "prepared_products")
    earlier = whole_tables.stored(context.instance, paths.storage, outputs, source) if new_data_run(context) else None
    judged = earlier.outputs["prepared_users"].recorded.get(JUDGED_BY_TODAY) if earlier is not None else None
    if earlier is not None and getattr(judged, "value", None) != 0:
        context.log.info(
            "Customers: prepared again, not used from the last run: some sign-up dates were later than tomorrow "
            "then (left out), and a day later they may not be."
        )
        earlier = None
    if earlier is not None:
        context.log.info(
            f"Customers and products: the raw tables are those run {earlier.origin[:8]} prepared, with the same "
            "settings, so its prepared tables and figures are used again (nothing prepared twice)."
        )
        for name, stored in earlier.outputs.items():
            metadata = {**stored.recorded, whole_tables.MADE_FROM: source, whole_tables.REUSED_FROM: earlier.origin}
            yield dg.Output(stored, output_name=name, metadata=metadata)
        return
    raw_users, raw_products = (
        whole_tables.read_latest(context.instance, name) for name in ingestion.WHOLE_TABLES.values()
    )
    # the masks the ingestion step computed for these same tables: the rules do not run a second time
    masks = rule_results.load_masks(context, paths, ingestion.raw_data.keys)
    frames = Frames(raw_users, raw_products, pd.DataFrame(), input_limits.limits()).with_masks(masks)
    users, users_dropped = preparation.prepare_users(frames)
    products, products_dropped = preparation.prepare_products(frames, config.non_product_pattern)
    tables = (
        ("prepared_users", users, raw_users, users_dropped),
        ("prepared_products", products, raw_products, products_dropped),
    )
    context.log.info("\n".join(f"{n}: {len(f)} of {len(r)} rows kept; dropped {d or 'none'}" for n, f, r, d in tables))
    judged_by_today = {"prepared_users": {JUDGED_BY_TODAY: preparation.dates_judged_by_today(frames)}}
    for name, frame, raw, dropped in tables:
        yield dg.Output(
            frame,
            output_name=name,
            metadata={
                **judged_by_today.get(name, {}),
                "input_records": len(raw),
                "rows_dropped": sum(dropped.values()),
                "dropped_by_reason": dropped,
                "dropped_table": counts_table(dropped),
                "rule_masks_reused": set(masks) == {"users", "products"},
                whole_tables.MADE_FROM: source,
            },
        )


def _recorded_sha256(context: dg.AssetExecutionContext, name: str) -> str:
    """The sha256 of the stored table the latest materialization of `name` recorded ("" when none)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
    entry = event.asset_materialization.metadata.get("sha256") if event and event.asset_materialization else None
    return str(entry.value) if entry is not None else ""


def _prepare_file(paths: RecoMartPaths, key: str, products: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
    """One file's prepared purchases, the rows dropped by rule, and the raw manifest it was made from."""
    storage = paths.storage
    manifest = transaction_store.read_json(transaction_store.raw_manifest(storage, key))
    masks = rule_results.load_partition_masks(paths, key, manifest["run_id"]) if manifest else None
    if manifest is None or masks is None:
        raise dg.Failure(
            description=f"{key}: this purchase file has no complete checked read in storage (the refresh that "
            "read it stopped early). Refresh with 'everything' to read it again.",
            allow_retries=False,
        )
    raw = pd.read_parquet(transaction_store.raw_path(storage, key))
    frames = Frames(pd.DataFrame(), pd.DataFrame(), raw).with_masks({"transactions": masks})
    prepared, dropped = preparation.prepare_transactions(frames, products, consume=True)
    return prepared, dropped, {**manifest, "input_records": len(raw)}


@dg.asset(
    partitions_def=TRANSACTION_FILES,
    backfill_policy=SINGLE_RUN,
    deps=[validation_report],
    group_name="preparation",
    kinds={"pandas", "parquet"},
)
def prepared_transactions(
    context: dg.AssetExecutionContext, paths: RecoMartPaths, prepared_products: pd.DataFrame
) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
    """Transactions every rule accepts, typed, with amounts, by time: one table per purchase file.

    Amounts use the product's price when a line has no unit price, so a file is prepared against the
    products prepared in the same run.
    """
    keys, partitioned = step_keys(context, paths)
    storage = paths.storage
    per_file, totals, dropped_total, first = {}, 0, {}, None
    lines = step_log.Lines(context)  # one log entry for all files (each file's figures: its partition's metadata)
    for key in keys:
        prepared, dropped, manifest = _prepare_file(paths, key, prepared_products)
        path = write_parquet(prepared, transaction_store.prepared_path(storage, key))
        stored = file_metadata(path, records=len(prepared), frame=prepared)
        write_json(  # checksum: of the prepared table's bytes (what the features and the model learn from)
            {
                "file": key,
                "sha256": manifest["sha256"],
                "checksum": stored["sha256"],
                "rows": len(prepared),
                "dropped": dropped,
            },
            transaction_store.prepared_manifest(storage, key),
        )
        lines.add(f"{key}: {len(prepared)} of {manifest['input_records']} rows kept; dropped {dropped or 'none'}")
        per_file[key] = {
            **stored,
            "input_records": manifest["input_records"],
            "rows_dropped": sum(dropped.values()),
            "dropped_by_reason": dropped,
            "dropped_table": counts_table(dropped),
            "rule_masks_reused": True,
        }
        totals += manifest["input_records"]
        for reason, count in dropped.items():
            dropped_total[reason] = dropped_total.get(reason, 0) + count
        first = prepared.head(5) if first is None else first
    lines.log()
    if partitioned:
        for key, metadata in per_file.items():
            context.add_asset_metadata(metadata, partition_key=key)
        yield dg.MaterializeResult()
        return
    for key, metadata in per_file.items():
        yield dg.AssetMaterialization(asset_key="prepared_transactions", partition=key, metadata=metadata)
    manifest_path = write_json(
        {k: {"rows": m["records"], "rows_dropped": m["rows_dropped"]} for k, m in per_file.items()},
        storage / FILES_MANIFEST,
    )
    kept = sum(m["records"] for m in per_file.values())
    yield dg.MaterializeResult(
        metadata={
            **file_metadata(manifest_path, records=kept, frame=first),
            "input_records": totals,
            "rows_dropped": sum(dropped_total.values()),
            "dropped_by_reason": dropped_total,
            "dropped_table": counts_table(dropped_total),
            "rule_masks_reused": True,
            "source_files": list(per_file),
        }
    )
