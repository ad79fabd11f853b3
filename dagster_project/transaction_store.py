"""Where each transactions file's partition lives under the storage folder, and reading them back.

Per file (partition key = file name), every write atomic:
- raw/transactions/files/<key>.parquet        the file's rows as read (text columns)
- raw/transactions/files/<key>.hashes.parquet two hashes per row (repeated lines across files)
- raw/transactions/files/<key>.json           what was read: the file's sha256, rows, the run that read it
- validation/partitions/<key>.json            the rules' result on the file (a partial ValidationReport)
- validation/partitions/<key>.masks.parquet   the per-row rule masks preparation drops by
- prepared/transactions/<key>.parquet         the rows every rule accepts, typed
- prepared/transactions/<key>.json            the sha256 of the file it was prepared from, the prepared
                                              table's own checksum, rows, drops
The manifests (.json) are written last: a partition is complete when its manifest says so, and a file
is up to date when its prepared manifest names the file's current sha256 (`prepared_state`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

RAW_FOLDER = "raw/transactions/files"
RESULTS_FOLDER = "validation/partitions"
PREPARED_FOLDER = "prepared/transactions"


def _named(key: str) -> str:
    """The key as a file name under storage: a key naming another folder (`..`, `a/b`) is refused."""
    if key in ("", ".", "..") or Path(key).name != key or "\\" in key:
        raise ValueError(f"{key!r} is not a purchase file's name, so it names nothing in storage.")
    return key


def _at(storage: Path, folder: str, key: str, suffix: str) -> Path:
    return Path(storage) / folder / f"{_named(key)}{suffix}"


def raw_path(storage: Path, key: str) -> Path:
    return _at(storage, RAW_FOLDER, key, ".parquet")


def hashes_path(storage: Path, key: str) -> Path:
    return _at(storage, RAW_FOLDER, key, ".hashes.parquet")


def raw_manifest(storage: Path, key: str) -> Path:
    return _at(storage, RAW_FOLDER, key, ".json")


def result_path(storage: Path, key: str) -> Path:
    return _at(storage, RESULTS_FOLDER, key, ".json")


def masks_path(storage: Path, key: str) -> Path:
    return _at(storage, RESULTS_FOLDER, key, ".masks.parquet")


def prepared_path(storage: Path, key: str) -> Path:
    return _at(storage, PREPARED_FOLDER, key, ".parquet")


def prepared_manifest(storage: Path, key: str) -> Path:
    return _at(storage, PREPARED_FOLDER, key, ".json")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def prepared_state(storage: Path, reference: str | None = None) -> dict[str, str]:
    """key -> sha256 of the file its prepared partition was made from (complete, consistent partitions only).

    A partition counts only when its raw parts (table, line hashes, rule result) describe the same file
    content it was prepared from (a run that failed after reading a file leaves them newer), and, given
    the customers' and products' `reference` (`transaction_files.reference`), when it was judged against them.
    """
    state = {}
    for manifest in sorted((Path(storage) / PREPARED_FOLDER).glob("*.json")):
        key = manifest.name.removesuffix(".json")
        found, raw = read_json(manifest), read_json(raw_manifest(storage, key)) or {}
        if not (found and prepared_path(storage, key).exists() and isinstance(found.get("sha256"), str)):
            continue
        if raw.get("sha256") != found["sha256"] or (reference is not None and raw.get("reference") != reference):
            continue
        state[key] = found["sha256"]
    return state


def prepared_checksums(storage: Path, keys: Iterable[str]) -> dict[str, str]:
    """key -> checksum of its prepared table ("" when its manifest has none: written before checksums were kept)."""
    return {key: str((read_json(prepared_manifest(storage, key)) or {}).get("checksum", "")) for key in keys}


def stored_keys(storage: Path) -> set[str]:
    """Every key with any file in storage (raw or prepared)."""
    keys = {p.name.removesuffix(".json") for p in (Path(storage) / RAW_FOLDER).glob("*.json")}
    keys |= {p.name.removesuffix(".json") for p in (Path(storage) / PREPARED_FOLDER).glob("*.json")}
    return keys


def remove(storage: Path, key: str) -> None:
    """Every stored file of one partition: its export left the data folder."""
    for path in (
        prepared_manifest(storage, key),
        raw_manifest(storage, key),
        prepared_path(storage, key),
        raw_path(storage, key),
        hashes_path(storage, key),
        result_path(storage, key),
        masks_path(storage, key),
    ):
        path.unlink(missing_ok=True)


def missing_prepared(storage: Path, keys: Iterable[str]) -> list[str]:
    return [k for k in keys if not prepared_path(storage, k).exists()]


def load_prepared(storage: Path, keys: Sequence[str]) -> pd.DataFrame:
    """Every prepared partition of `keys`, as one table ordered by time (ties: file order, then row order).

    Each partition is already ordered by time; a stable sort of the files in key order gives the order
    one merged table of all files would have had.
    """
    frames = [pd.read_parquet(prepared_path(storage, k)) for k in sorted(keys)]
    if not frames:
        raise FileNotFoundError(f"No prepared purchases under {Path(storage) / PREPARED_FOLDER}")
    merged = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
