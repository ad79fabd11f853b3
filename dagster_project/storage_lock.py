"""One writer at a time on a storage folder, whoever started the run.

The run queue already runs one queued run at a time; this lock also covers runs that bypass the
queue (`dagster job execute`, `python run_dagster_pipeline.py`, a second instance). It is an OS
file lock (flock), so a killed run releases it at once and never leaves a stale lock behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_project.fileio import own_temp_files

LOCK_NAME = ".recomart.lock"
DEFAULT_TIMEOUT = float(os.environ.get("RECOMART_LOCK_TIMEOUT", "3600"))


class StorageBusy(TimeoutError):
    """Another run held the storage folder for longer than we were willing to wait."""


def holder(storage: Path) -> dict:
    """Who holds (or last held) the lock, as written in the lock file."""
    try:
        return json.loads((Path(storage) / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def holder_words(found: dict) -> str:
    """Who holds the lock, in words: the owner (a run, an upload), its process and since when, in local time."""
    if not isinstance(found, dict) or not found:
        return "another run"
    details = []
    if isinstance(found.get("pid"), int):
        details.append(f"process {found['pid']}")
    since = found.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool):
        at = time.localtime(since)
        day = "today" if at[:3] == time.localtime()[:3] else f"on {at.tm_mday} {time.strftime('%b %Y', at)}"
        details.append(f"since {time.strftime('%H:%M:%S', at)} {day}")
    owner = str(found.get("owner") or "another run")
    return f"{owner} ({', '.join(details)})" if details else owner


@contextmanager
def storage_lock(
    storage: Path, owner: str, timeout: float = DEFAULT_TIMEOUT, log: Callable[[str], None] = lambda _: None
) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: the run queue is the only guard there
        yield
        return
    storage = Path(storage)
    storage.mkdir(parents=True, exist_ok=True)
    with open(storage / LOCK_NAME, "a+") as handle:  # closing releases the flock
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log(f"Waiting for the storage folder {storage}: held by {holder_words(holder(storage))}")
                    waited = True
                if time.monotonic() > deadline:
                    raise StorageBusy(
                        f"{storage} is still being written by {holder_words(holder(storage))} after "
                        f"{timeout:.0f} s; try again when that run has finished."
                    ) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"owner": owner, "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        if waited:
            log(f"Got the storage folder {storage}")
        yield


def remove_stale_temp_files(folder: Path, recursive: bool = True) -> int:
    """RecoMart's own temp files a killed writer left behind (only safe while holding the lock).

    Only names RecoMart owns (fileio.TEMP_PREFIX): a folder shared with other programs keeps theirs.
    """
    stale = own_temp_files(folder, recursive)
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
