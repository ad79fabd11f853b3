"""Resources: the folders a run reads and writes, and the IO manager that stores tables there."""

import json
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import settings
from dagster_project.defs.metadata import file_metadata
from dagster_project.defs.run_config import check_run_config
from dagster_project.fileio import write_json, write_parquet
from dagster_project.storage_lock import remove_stale_temp_files, storage_lock

# Where each asset's output lives under the storage folder; raw extracts are kept per day.
OUTPUT_PATHS = {
    "raw_users": "raw/users/{date}/users_merged.parquet",
    "raw_products": "raw/products/{date}/products.parquet",
    "raw_transactions": "raw/transactions/{date}/transactions.parquet",
    "validation_report": "validation/validation_report.json",
    "prepared_users": "prepared/users.parquet",
    "prepared_products": "prepared/products.parquet",
    "prepared_transactions": "prepared/transactions.parquet",
    "user_features": "features/user_features.parquet",
    "item_features": "features/item_features.parquet",
    "interaction_matrix": "features/interactions.parquet",
}


class RecoMartPaths(dg.ConfigurableResource):
    """Data, storage and models folders: run config, else RECOMART_*_DIR, else the project's folders."""

    data_dir: str | None = None
    storage_dir: str | None = None
    models_dir: str | None = None

    @property
    def data(self) -> Path:
        return settings.folder("data", self.data_dir)

    @property
    def storage(self) -> Path:
        return settings.folder("storage", self.storage_dir)

    @property
    def models(self) -> Path:
        return settings.folder("models", self.models_dir)


class StorageIOManager(dg.IOManager):
    """Tables as Parquet, reports as JSON, under the storage folder; each write atomic.

    Inputs are read from the exact file the upstream's latest materialization recorded, so a run
    reads what the run before it wrote even when the day (and so the raw folder) has changed.
    """

    def __init__(self, paths: RecoMartPaths):
        self.paths = paths

    def _path_for(self, name: str) -> Path:
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        return self.paths.storage / OUTPUT_PATHS[name].format(date=date)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        name = context.asset_key.path[-1]
        path = self._path_for(name)
        if isinstance(obj, pd.DataFrame):
            write_parquet(obj, path)
            context.add_output_metadata(file_metadata(path, records=len(obj), frame=obj))
        else:
            write_json(obj, path)
            records = len(obj.get("checks", [])) if isinstance(obj, dict) else None
            context.add_output_metadata(file_metadata(path, records=records))
        context.log.info(f"Stored at: {path}")

    def load_input(self, context: dg.InputContext) -> object:
        name = context.asset_key.path[-1]
        path = self._recorded_path(context) or self._path_for(name)
        if not path.exists():
            raise FileNotFoundError(f"{name} has no stored output at {path}: materialize it first "
                                    f"(run the complete pipeline).")
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return pd.read_parquet(path)

    def _recorded_path(self, context: dg.InputContext) -> Path | None:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        entry = event.asset_materialization.metadata.get("path") if event and event.asset_materialization else None
        path = Path(entry.value) if entry is not None else None
        return path if path is not None and path.exists() and path.is_relative_to(self.paths.storage) else None


@dg.io_manager(required_resource_keys={"paths"})
def storage_io_manager(init_context: dg.InitResourceContext):
    """The IO manager, holding the storage lock for as long as the run (or step process) uses it."""
    paths: RecoMartPaths = init_context.resources.paths
    log = init_context.log.info if init_context.log else (lambda _: None)
    if init_context.dagster_run is not None:  # every run reaches here before its first read or write
        check_run_config(init_context.dagster_run.run_config)
    with storage_lock(paths.storage, owner=f"run {init_context.run_id}", log=log):
        for folder in (paths.storage, paths.models):
            if removed := remove_stale_temp_files(folder):
                log(f"Removed {removed} temporary file(s) a stopped run left in {folder}")
        yield StorageIOManager(paths)

