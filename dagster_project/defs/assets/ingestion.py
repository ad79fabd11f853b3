"""Ingestion: users (every users*.csv, merged), products and transactions, read concurrently.

The three readers run on threads inside one step: pyarrow and file I/O release the GIL, and one step
avoids the ~4 s process start the multiprocess executor pays per step. The data-quality rules run
here too, as asset checks on the three raw tables, while the frames are in memory.
"""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from dagster_project import ingest, validation
from dagster_project.defs.checks import check_results, rule_check_specs
from dagster_project.defs.metadata import table_out
from dagster_project.defs.resources import RecoMartPaths

READERS = {"raw_users": ingest.read_users, "raw_products": ingest.read_products,
           "raw_transactions": ingest.read_transactions}


@dg.multi_asset(
    outs={
        "raw_users": table_out("Users from every users*.csv, merged (duplicates kept)."),
        "raw_products": table_out("Products from products*.json."),
        "raw_transactions": table_out("Transactions from transactions*.csv."),
    },
    check_specs=rule_check_specs(),
    group_name="ingestion",
)
def raw_data(context: dg.AssetExecutionContext, paths: RecoMartPaths):
    """Read the shop's exports from the data folder and store them as Parquet."""
    data_dir = paths.data
    context.log.info(f"Reading exports from {data_dir}")
    with ThreadPoolExecutor(max_workers=len(READERS)) as pool:
        futures = {name: pool.submit(reader, data_dir, context.log.info) for name, reader in READERS.items()}
        try:
            frames = {name: future.result() for name, future in futures.items()}
        except ingest.DataInputError as exc:  # the message names the file and the fix: show it, not a traceback
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    for name, frame in frames.items():
        yield dg.Output(frame, output_name=name, metadata={
            "source_files": dg.MetadataValue.json(sorted(frame[ingest.SOURCE_COLUMN].unique().tolist())),
        })
    report = validation.validate(validation.Frames(frames["raw_users"], frames["raw_products"],
                                                   frames["raw_transactions"]))
    yield from check_results(report)
