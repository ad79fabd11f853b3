"""The customers' and products' tables of an earlier run, used again when nothing they were made from changed.

A refresh of new data only reads the day's purchase file, but the customers' and products' exports are
read whole (`raw_data`) and prepared whole (`prepared_data`) by every run. When those exports are byte
for byte the ones an earlier run read (their sha256 in the data folder's scan, `transaction_files.reference`),
with the same readers' limits, the same preparation settings and the same code, that run's stored tables,
rule results and figures are the ones a new read would make: they are recorded again as this run's
(same file, same metadata) and nothing is read, checked or written a second time.

What a run made is trusted only when it is complete: both tables materialized by one run, which recorded
what they were made from in their metadata, the files still in storage with the sha256 it recorded, and
(for the raw tables) the rule results and masks stored by that same run. Anything else: read in full.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pandas as pd

import dagster_project
from dagster_project.fileio import sha256_of

# Metadata the tables record about what they were made from (compared by the next run).
MADE_FROM = "made_from"
# Metadata of a table used again: the run that made it.
REUSED_FROM = "reused_from_run"
FINGERPRINT = "input_fingerprint"  # the run's own (the whole data folder's), never carried over
# What the storage IO manager's file metadata holds (metadata.file_metadata): copied from the run that made the file.
FILE_KEYS = ("path", "size_bytes", "sha256", "records", "dagster/row_count", "dagster/column_schema", "preview")


@dataclass(frozen=True)
class StoredOutput:
    """An output an earlier run stored: the IO manager records it again (its file, its figures) and writes nothing."""

    path: Path
    metadata: dict  # the file's (FILE_KEYS), recorded by the IO manager
    recorded: dict  # the rest of what the earlier run recorded (figures, source files)


@cache
def code_fingerprint() -> str:
    """The package's modules (readers, rules, preparation, and the assets applying them) and the versions of the
    libraries that parse and hold the tables: any change means reading again."""
    digest = hashlib.sha256()
    package = Path(dagster_project.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for library in ("numpy", "pandas", "pyarrow"):
        digest.update(f"{library}=={version(library)}\n".encode())
    return digest.hexdigest()


def made_from(**parts: object) -> str:
    """One text for what a table was made from (the files' reference, settings, the code): equal means the same."""
    return json.dumps({**parts, "code": code_fingerprint()}, sort_keys=True, default=str)


@dataclass(frozen=True)
class Earlier:
    """Tables one earlier run recorded: that run (`writer`), the run that really read the files (`origin`)."""

    writer: str
    origin: str
    outputs: dict[str, StoredOutput]


def stored(instance: dg.DagsterInstance, storage: Path, names: tuple[str, ...], source: str) -> Earlier | None:
    """The tables `names` as one earlier run recorded them, made from `source` (`made_from`); None when any is
    missing, recorded by another run, made from something else, or no longer the file it recorded in storage."""
    outputs, writers, origins = {}, set(), set()
    for name in names:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        recorded = metadata.get(MADE_FROM)
        if recorded is None or recorded.value != source or any(key not in metadata for key in FILE_KEYS[:3]):
            return None
        path = Path(str(metadata["path"].value))
        if not (path.is_file() and path.resolve().is_relative_to(Path(storage).resolve())):
            return None
        if path.stat().st_size != metadata["size_bytes"].value or sha256_of(path) != metadata["sha256"].value:
            return None
        writers.add(event.run_id)
        origins.add(str(metadata[REUSED_FROM].value) if REUSED_FROM in metadata else event.run_id)
        own = {
            key: value for key, value in metadata.items() if key not in (MADE_FROM, REUSED_FROM, "input_fingerprint")
        }
        outputs[name] = StoredOutput(
            path,
            {key: value for key, value in own.items() if key in FILE_KEYS},
            {key: value for key, value in own.items() if key not in FILE_KEYS},
        )
    if len(writers) != 1 or len(origins) != 1:  # both tables from one run, or they may not belong together
        return None
    return Earlier(writers.pop(), origins.pop(), outputs)


def read_latest(instance: dg.DagsterInstance, name: str) -> pd.DataFrame:
    """The table the latest materialization of `name` recorded (as the storage IO manager reads an input)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    entry = event.asset_materialization.metadata.get("path") if event and event.asset_materialization else None
    if entry is None or not Path(str(entry.value)).is_file():
        raise dg.Failure(
            description=f"{name} has no stored table: run the complete pipeline (it reads the exports again).",
            allow_retries=False,
        )
    return pd.read_parquet(str(entry.value))
