"""Resources: the folders a run reads and writes, the readers' limits, and the IO manager over storage.

The one place resources are chosen: every asset, check and sensor asks for them by key.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import settings
from dagster_project.defs.metadata import COMPRESSION, RELATIVE_PATH, file_metadata
from dagster_project.defs.run_config import InputLimitsResource, check_run_config
from dagster_project.defs.whole_tables import StoredOutput
from dagster_project.fileio import StagedTable, publish, write_json, write_parquet
from dagster_project.storage_lock import remove_stale_temp_files, storage_lock
from dagster_project.validation import ValidationReport


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


class StorageIOManager(dg.ConfigurableIOManager):
    """Tables as Parquet and the validation report as JSON, under the storage folder; each write atomic.

    Where each output lives is its asset's definition metadata (`RELATIVE_PATH`, `{date}` for the day),
    so asset names are written once, in the assets. Inputs are read from the exact file the upstream's
    latest materialization recorded, so a run reads what the run before it wrote even when the day
    (and so the raw folder) has changed.
    """

    paths: dg.ResourceDependency[RecoMartPaths]

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["StorageIOManager"]:
        """Refuse out-of-range knobs, then hold the storage lock for as long as the run (or step process) runs.

        Every run initializes this before its first read or write, so a bad knob fails the run before
        any step starts, and nothing reads or writes storage while another run holds it. Holding the
        lock, it is safe to remove the temporary files a killed run left.
        """
        log = context.log.info if context.log else (lambda _: None)
        if context.dagster_run is not None:
            check_run_config(context.dagster_run.run_config)
        with storage_lock(self.paths.storage, owner=f"run {context.run_id}", log=log):
            for folder in (self.paths.storage, self.paths.models):
                if removed := remove_stale_temp_files(folder):
                    log(f"Removed {removed} temporary file(s) a stopped run left in {folder}")
            yield self

    def _path_for(self, relative_path: str) -> Path:
        date = datetime.now(UTC).strftime("%Y-%m-%d")
        return self.paths.storage / relative_path.format(date=date)

    def handle_output(
        self, context: dg.OutputContext, obj: pd.DataFrame | StagedTable | ValidationReport | StoredOutput
    ) -> None:
        if isinstance(obj, StoredOutput):  # an earlier run's file, unchanged: recorded again, not rewritten
            context.add_output_metadata(obj.metadata)
            return
        path = self._path_for(context.definition_metadata[RELATIVE_PATH])
        if isinstance(obj, pd.DataFrame):
            write_parquet(obj, path, context.definition_metadata.get(COMPRESSION, "snappy"))
            context.add_output_metadata(file_metadata(path, records=len(obj), frame=obj))
        elif isinstance(obj, StagedTable):  # written while it was made (feature_update.py): renamed into place
            if obj.tmp.parent != path.parent:
                raise ValueError(f"{context.asset_key.to_user_string()}: {obj.tmp} is not beside {path}")
            publish(obj.tmp, path)
            context.add_output_metadata(file_metadata(path, records=obj.records, frame=obj.preview))
        elif isinstance(obj, ValidationReport):
            write_json(obj.to_dict(), path)
            context.add_output_metadata(file_metadata(path, records=len(obj.checks)))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}")

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | ValidationReport:
        name = context.asset_key.to_user_string()
        path = self._recorded_path(context) or self._path_for(
            context.upstream_output.definition_metadata[RELATIVE_PATH]
        )
        if not path.exists():
            raise FileNotFoundError(
                f"{name} has no stored output at {path}: materialize it first (run the complete pipeline)."
            )
        if path.suffix == ".json":
            return ValidationReport.from_dict(json.loads(path.read_text()))
        return pd.read_parquet(path)

    def _recorded_path(self, context: dg.InputContext) -> Path | None:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        entry = event.asset_materialization.metadata.get("path") if event and event.asset_materialization else None
        path = Path(entry.value) if entry is not None else None
        return path if path is not None and path.exists() and path.is_relative_to(self.paths.storage) else None


@dg.definitions
def resources() -> dg.Definitions:
    """The folders are configured at launch, so run config for `paths` reaches the IO manager too."""
    paths = RecoMartPaths.configure_at_launch()
    return dg.Definitions(
        resources={"paths": paths, "io_manager": StorageIOManager(paths=paths), "input_limits": InputLimitsResource()}
    )
