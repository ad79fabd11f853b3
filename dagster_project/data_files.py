"""Fingerprints of the data folder's input files, for the sensor that watches them.

A file is re-hashed only when its size or modification time changed, so polling a folder of large
exports stays cheap. The fingerprint of the whole set is the sensor's run key: unchanged files can
never start a second run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dagster_project.contract import ENTITIES
from dagster_project.fileio import sha256_of

FileState = dict[str, list]  # name -> [mtime_ns, size, sha256]


def scan(data_dir: Path, previous: FileState | None = None) -> FileState:
    previous = previous or {}
    state: FileState = {}
    if not Path(data_dir).is_dir():
        return state
    for spec in ENTITIES:
        for path in sorted(Path(data_dir).glob(spec.pattern)):
            if not path.is_file():
                continue
            stat = path.stat()
            old = previous.get(path.name)
            if old and old[0] == stat.st_mtime_ns and old[1] == stat.st_size:
                state[path.name] = old
            else:
                state[path.name] = [stat.st_mtime_ns, stat.st_size, sha256_of(path)]
    return state


def fingerprint(state: FileState) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(f"{name}:{state[name][2]}\n".encode())
    return digest.hexdigest()


def changed_files(old: FileState, new: FileState) -> list[str]:
    return sorted(n for n in new.keys() | old.keys() if (old.get(n) or [None] * 3)[2] != (new.get(n) or [None] * 3)[2])
