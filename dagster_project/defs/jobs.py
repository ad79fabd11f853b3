"""Jobs the app and the CLI call by name, and the executor they run on.

The default executor runs every step in the run's own process: on small data a process per step
costs more (~4 s each on two cores) than the work. Large data can switch to the multiprocess
executor by run config: `execution: {config: {multiprocess: {max_concurrent: 2}}}`.
"""

from __future__ import annotations

import dagster as dg

INGESTION_ASSETS = ["raw_users", "raw_products", "raw_transactions"]

local_executor = dg.ExecutorDefinition(
    name="in_process_or_multiprocess",
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_schema.config_type,
                           default_value={"in_process": {}}, is_required=False),
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    requirements=dg.multi_or_in_process_executor._requirements_fn,  # noqa: SLF001  (the same rules as Dagster's default)
    description="In-process by default; multiprocess when run config asks for it.",
)

ingestion_job = dg.define_asset_job(
    "ingestion_job", selection=dg.AssetSelection.assets(*INGESTION_ASSETS),
    description="Read the exports into raw Parquet and run the data-quality checks.",
)
complete_pipeline_job = dg.define_asset_job(
    "complete_pipeline_job", selection=dg.AssetSelection.all(),
    description="Ingest, validate, prepare, build features and train the recommender.",
)
