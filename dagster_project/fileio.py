"""Atomic file writes and file fingerprints.

Every output goes to a temporary file in the destination folder, is fsynced, then renamed over the
old one: a reader sees the last good file or the new one, never half a file, and a crashed run leaves
the previous output in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

# Every temporary file RecoMart writes is named .recomart-tmp-<target>.<random>.tmp: a name it owns, so
# clean-up after a killed run can never take another program's temporary files.
TEMP_PREFIX, TEMP_SUFFIX = ".recomart-tmp-", ".tmp"


# Inside `folders_synced_once`: the folders whose renames wait for one fsync when the block ends.
_DEFERRED_FOLDERS: ContextVar[set[Path] | None] = ContextVar("recomart_deferred_folders", default=None)


@contextmanager
def folders_synced_once() -> Iterator[None]:
    """Atomic writes in this block fsync their folder once, when the block ends, instead of after each rename.

    Each file is still written to a temporary file, fsynced and renamed: a reader sees the old file or the
    new one. What only the block's end makes durable is the set of renames, together; so write what says
    the files are complete (a manifest) after the block. A purchase file's four stored tables in two
    folders: two folder fsyncs instead of four.
    """
    folders: set[Path] = set()
    token = _DEFERRED_FOLDERS.set(folders)
    try:
        yield
    finally:
        _DEFERRED_FOLDERS.reset(token)
        for folder in sorted(folders):
            _fsync_dir(folder)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`."""
    tmp = staged_path(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def staged_path(path: Path) -> Path:
    """A new temporary file beside `path`, named so the clean-up after a killed run removes it; `publish` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp_name)


@dataclass(frozen=True)
class StagedTable:
    """A table already written to a temporary file beside its destination (`staged_path`), for the storage IO
    manager to `publish`: a table too large to hand over in memory is written as it is made."""

    tmp: Path
    records: int
    preview: pd.DataFrame  # its first rows


def publish(tmp: Path, path: Path) -> None:
    """Fsync the written temporary file `tmp` and rename it over `path` (the folder fsynced, or deferred)."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    _rename_over(tmp, path)


def _rename_over(tmp: Path, path: Path) -> None:
    """Rename `tmp` over `path`, then fsync the folder (or leave it to the deferred fsync of the step)."""
    _test_pause(path)
    os.replace(tmp, path)
    deferred = _DEFERRED_FOLDERS.get()
    if deferred is None:
        _fsync_dir(path.parent)
    else:
        deferred.add(path.parent)


def atomic_link(source: Path, path: Path) -> Path:
    """Put the file `source` at `path` too, atomically: a hard link renamed over `path` (no byte copied).

    The two names then share one file, which is safe only because nothing here writes a file in place:
    every write makes a new file and renames it over the old name (`atomic_path`), so a later write to
    either name leaves the other as it was. Where the folder cannot hold hard links, the file is copied.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    try:
        os.link(source, tmp)
    except OSError:  # no hard links here (another file system, or one without them): copy instead
        with atomic_path(path) as copy:
            shutil.copyfile(source, copy)
        return path
    try:
        _rename_over(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def own_temp_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Temporary files RecoMart's atomic writes left in `folder` (regular files only, links never)."""
    pattern = f"{TEMP_PREFIX}*{TEMP_SUFFIX}"
    found = Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern)
    return [p for p in found if p.is_file() and not p.is_symlink()]


def _test_pause(path: Path) -> None:
    """RECOMART_WRITE_PAUSE="SECONDS:TEXT" holds writes whose path contains TEXT just before the rename.

    The crash tests use it to kill a run while a file is half-published; it does nothing unless set.
    """
    setting = os.environ.get("RECOMART_WRITE_PAUSE")
    if setting:
        seconds, _, part = setting.partition(":")
        if part in str(path):
            import time

            time.sleep(float(seconds))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(frame: pd.DataFrame, path: Path, compression: str = "snappy") -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, compression=compression)
    return path


def write_json(payload: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
