"""Ingestion: users (every users*.csv, merged), products and transactions, read concurrently.

The three readers run on threads inside one step: pyarrow and file I/O release the GIL, and one step
avoids the ~4 s process start the multiprocess executor pays per step. The data-quality rules run
here, once, while the frames are in memory: the step emits their asset checks on the three raw tables
and stores their result for `validation_report` (see `rule_results`).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from dagster_project import data_files, ingest, validation
from dagster_project.contract import ENTITIES
from dagster_project.defs import rule_results
from dagster_project.defs.automation import INPUT_FINGERPRINT_TAG
from dagster_project.defs.checks import check_results, rule_check_specs
from dagster_project.defs.freshness import FRESHNESS_POLICY
from dagster_project.defs.metadata import table_out
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import InputLimitsResource
from dagster_project.freshness import WATCHED_ASSETS

# Entity -> its raw table's asset name, description and file under the storage folder (kept per day).
RAW_TABLES = {spec.name: f"raw_{spec.name}" for spec in ENTITIES}
OUTS = {
    "users": ("Users from every users*.csv, merged (duplicates kept).", "raw/users/{date}/users_merged.parquet"),
    "products": ("Products from products*.json.", "raw/products/{date}/products.parquet"),
    "transactions": ("Transactions from transactions*.csv.", "raw/transactions/{date}/transactions.parquet"),
}


@dg.multi_asset(
    outs={
        RAW_TABLES[entity]: table_out(
            description, path, FRESHNESS_POLICY if RAW_TABLES[entity] in WATCHED_ASSETS else None
        )
        for entity, (description, path) in OUTS.items()
    },
    check_specs=rule_check_specs(RAW_TABLES),
    group_name="ingestion",
)
def raw_data(
    context: dg.AssetExecutionContext, paths: RecoMartPaths, input_limits: InputLimitsResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Read the shop's exports from the data folder and store them as Parquet; run the data-quality rules."""
    data_dir, limits = paths.data, input_limits.limits()
    context.log.info(f"Reading exports from {data_dir}")
    # Recorded on the run before reading: the data-folder sensor starts no second run for files a refresh read.
    fingerprint = data_files.fingerprint(data_files.scan(data_dir))
    context.instance.add_run_tags(context.run_id, {INPUT_FINGERPRINT_TAG: fingerprint})
    with ThreadPoolExecutor(max_workers=len(ENTITIES)) as pool:
        futures = {
            spec.name: pool.submit(ingest.read_entity, data_dir, spec, context.log.info, limits) for spec in ENTITIES
        }
        try:
            frames = {entity: future.result() for entity, future in futures.items()}
        except ingest.DataInputError as exc:  # the message names the file and the fix: show it, not a traceback
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    for entity, frame in frames.items():
        yield dg.Output(
            frame,
            output_name=RAW_TABLES[entity],
            metadata={
                "source_files": sorted(frame[ingest.SOURCE_COLUMN].unique().tolist()),
                "input_fingerprint": fingerprint,
            },
        )
    raw = validation.Frames(**frames, limits=limits)
    report = validation.validate(raw)
    rule_results.store(paths, report, context.run_id, raw.masks)
    yield from check_results(report, RAW_TABLES)
