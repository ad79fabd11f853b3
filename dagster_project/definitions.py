"""The RecoMart code location: `dagster dev` (pyproject) or `-m dagster_project.definitions`."""

import dagster as dg

from dagster_project.defs import checks
from dagster_project.defs.assets import features, ingestion, model, preparation, validation
from dagster_project.defs.jobs import complete_pipeline_job, ingestion_job, local_executor
from dagster_project.defs.resources import RecoMartPaths, storage_io_manager
from dagster_project.defs.schedules import daily_pipeline
from dagster_project.defs.sensors import data_files_sensor

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion, validation, preparation, features, model]),
    asset_checks=[checks.quality_gate],
    jobs=[ingestion_job, complete_pipeline_job],
    schedules=[daily_pipeline],
    sensors=[data_files_sensor],
    resources={"paths": RecoMartPaths(), "io_manager": storage_io_manager},
    executor=local_executor,
)
