"""The data folder's input files: which ones may be read, and their fingerprints for the sensor.

Only files that lie inside the data folder are inputs: a link (or any path) in the folder that leads
outside it is refused, never followed, so a link planted in an upload folder cannot make a run read,
hash or echo a file elsewhere on the machine.

A file is re-hashed only when its size or modification time changed, so polling a folder of large
exports stays cheap. The fingerprint of the whole set is the sensor's run key: unchanged files can
never start a second run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dagster_project.contract import ENTITIES, EntitySpec
from dagster_project.fileio import sha256_of

FileState = dict[str, list]  # name -> [mtime_ns, size, sha256 (or REFUSED)]
REFUSED = "refused: leads outside the data folder"


def resolve_inside(data_dir: Path, path: Path) -> Path | None:
    """The real file behind `path` when it lies inside `data_dir` (links resolved), else None."""
    try:
        folder, target = Path(data_dir).resolve(), Path(path).resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13)
        return None
    return target if target.is_relative_to(folder) else None


def matching(data_dir: Path, spec: EntitySpec) -> list[Path]:
    """Every entry of the folder that matches the entity's patterns (links included, not followed)."""
    found = {p for pattern in spec.patterns for p in Path(data_dir).glob(pattern)}
    return sorted(found)


def open_inside(data_dir: Path, path: Path):
    """Open an input file for reading, refusing to follow a link swapped in after the check."""
    target = resolve_inside(data_dir, path)
    if target is None:
        raise PermissionError(f"{path} leads outside {data_dir}")
    fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def scan(data_dir: Path, previous: FileState | None = None) -> FileState:
    previous = previous or {}
    state: FileState = {}
    if not Path(data_dir).is_dir():
        return state
    for spec in ENTITIES:
        for path in matching(data_dir, spec):
            target = resolve_inside(data_dir, path)
            if target is None:
                # Recorded (from the link itself) so that adding one starts a run that names and refuses it.
                link = path.lstat()
                state[path.name] = [link.st_mtime_ns, link.st_size, REFUSED]
                continue
            if not target.is_file():
                continue
            stat = target.stat()
            old = previous.get(path.name)
            if old and old[0] == stat.st_mtime_ns and old[1] == stat.st_size and old[2] != REFUSED:
                state[path.name] = old
            else:
                state[path.name] = [stat.st_mtime_ns, stat.st_size, sha256_of(target)]
    return state


def forget(state: FileState, data_dir: Path, specs: tuple[EntitySpec, ...]) -> FileState:
    """`state` without the files of `specs`: a scan given it hashes those again instead of trusting their size and
    modification time (which a copy with `cp -p`, `rsync -t` or an unzip keeps while the bytes change)."""
    names = {path.name for spec in specs for path in matching(data_dir, spec)}
    return {name: entry for name, entry in state.items() if name not in names}


def fingerprint(state: FileState) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(f"{name}:{state[name][2]}\n".encode())
    return digest.hexdigest()


def changed_files(old: FileState, new: FileState) -> list[str]:
    return sorted(n for n in new.keys() | old.keys() if (old.get(n) or [None] * 3)[2] != (new.get(n) or [None] * 3)[2])


def stat_of(path: Path) -> list[int] | None:
    """[mtime_ns, size] of the file behind `path` (links followed), as a scan records them; None if gone."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def unchanged(path: Path, entry: list | None) -> bool:
    """Whether the file still has the modification time and size a scan recorded with its sha256 in `entry`."""
    return bool(entry) and entry[2] != REFUSED and stat_of(path) == list(entry[:2])


def state_of(saved: object) -> FileState:
    """A scan as saved in JSON (`{"files": {name: [mtime_ns, size, sha256]}}`); anything malformed is left out."""
    files = saved.get("files") if isinstance(saved, dict) else None
    if not isinstance(files, dict):
        return {}
    kinds = (int, int, str)
    return {
        name: list(entry)
        for name, entry in files.items()
        if isinstance(entry, list) and len(entry) == 3 and all(isinstance(v, t) for v, t in zip(entry, kinds))
    }
