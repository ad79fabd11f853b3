"""Jobs the app and the CLI call by name (the executor they run on is in `executor`)."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.assets import ingestion

INGESTION_ASSETS = list(ingestion.RAW_TABLES.values())

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.assets(*INGESTION_ASSETS),
    description="Read the exports into raw Parquet and run the data-quality checks.",
)
complete_pipeline_job = dg.define_asset_job(
    "complete_pipeline_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, validate, prepare, build features and train the recommender.",
)
