"""Transactions export files as partitions: which files are new, changed or gone, and what a refresh reads.

Each transactions export file is one partition of the raw and prepared transactions, keyed by its file
name: a file is what a shop delivers, re-exports to correct, and what an error names. A refresh of "new
data only" reads the files whose content (sha256) differs from what storage last prepared from them;
"everything" reads every file. Partition keys are added in file-name order, so daily files named by
date are the tail of the key list, and one range (first new or changed key .. last key) covers them; a
changed older file widens the range to the end. Simple and correct: a file inside the range that did
not change is read again, never skipped wrongly.

Plain logic (no Dagster import): the sensor, the schedule, the pipeline's own steps and the app all plan
with it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagster_project.contract import PRODUCTS, TRANSACTIONS, USERS
from dagster_project.data_files import REFUSED, FileState, fingerprint

# The dynamic partitions' name in Dagster, and the run tags that give a run its range of partitions.
PARTITIONS_NAME = "transaction_files"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"  # a run of one partition (the Dagster UI's "Materialize" of one file)
# What a partition key may not hold (Dagster's own rule), and the longest name we accept.
FORBIDDEN_IN_KEYS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0", ",", "[", "]", "/", "\\")
MAX_KEY_CHARS = 200
EVERYTHING, NEW_DATA = "everything", "new_data"
# The run tag that says which of the two a run is (the sensor, the schedule and the app set it).
REFRESH_KIND_TAG = "recomart/refresh"
# The assets with one partition per file, and those a refresh of no new file still runs (read whole):
# a refresh with nothing new to read runs these only (tests/test_new_data_requests.py keeps the list true).
PARTITIONED_ASSETS = ("raw_transactions", "prepared_transactions")
WHOLE_DATA_ASSETS = {
    "complete_pipeline_job": (
        "raw_users",
        "raw_products",
        "validation_report",
        "prepared_users",
        "prepared_products",
        "user_features",
        "item_features",
        "interaction_matrix",
        "collaborative_filtering_model",
        "user_recommendations",
    ),
    "ingestion_job": ("raw_users", "raw_products"),
}


class FileNameError(ValueError):
    """A transactions file whose name cannot be a partition key; the message names the file and the fix."""


def is_transactions_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TRANSACTIONS.patterns)


def check_key(name: str) -> str:
    """The file name as a partition key, or a `FileNameError` naming the file and what to rename."""
    bad = [part for part in FORBIDDEN_IN_KEYS if part in name]
    if bad or len(name) > MAX_KEY_CHARS or name != name.strip():
        what = (
            f"holds {', '.join(repr(b) for b in bad)}"
            if bad
            else ("is longer than 200 characters" if len(name) > MAX_KEY_CHARS else "starts or ends with a space")
        )
        raise FileNameError(
            f"{name}: this transactions file's name {what}, so it cannot name a part of the purchase history. "
            f"Rename it (letters, digits, '-', '_' and '.' are safe, e.g. transactions_2026-10-31.csv)."
        )
    return name


def reference(state: FileState) -> str:
    """A fingerprint of the customers' and products' exports (in a scan, `data_files.scan`).

    Purchases are judged against them (customer and product known, list prices): a stored file is
    up to date only while they are what it was judged against.
    """
    patterns = [*USERS.patterns, *PRODUCTS.patterns]
    return fingerprint({n: e for n, e in state.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns)})


def current_files(state: FileState) -> dict[str, str]:
    """Transactions files in a data-folder scan (`data_files.scan`), name -> sha256; links leading out too.

    A refused link keeps its place (its read names and refuses it), under a fingerprint of its own.
    """
    return {
        name: (entry[2] if entry[2] != REFUSED else f"{REFUSED}:{entry[0]}:{entry[1]}")
        for name, entry in state.items()
        if is_transactions_file(name)
    }


@dataclass(frozen=True)
class Plan:
    """What one refresh does to the partitions, and the range of keys it reads (None: no file to read)."""

    add: list[str]  # new partition keys, in file-name order
    delete: list[str]  # keys whose file left the data folder
    keys: list[str]  # every key after the change, in partition order
    changed: list[str]  # keys whose file is new or differs from what storage holds for it
    start: str | None
    end: str | None

    @property
    def reads_files(self) -> bool:
        return self.start is not None

    def tags(self) -> dict[str, str]:
        """The run tags for the range; none when there is nothing to read."""
        return range_tags(self.start, self.end)

    @property
    def added_before(self) -> list[str]:
        """New files named before a file already known: the files named after them are read again, and a line
        they share with such a file now counts as repeated there (in the later file), not in the new one."""
        known = [k for k in self.keys if k not in self.add]
        return [k for k in self.add if known and k < max(known)]

    def describe(self) -> str:
        """In words, for logs and the app: how many files the refresh reads (and why more than the new ones)."""
        if not self.reads_files:
            return "no purchase file: none is new or changed"
        count = self.keys.index(self.end) - self.keys.index(self.start) + 1
        words = f"{count} purchase file{'s' if count != 1 else ''} ({self.start} .. {self.end})"
        if early := self.added_before:
            words += f"; {early_words(early)}"
        return words


def early_words(names: Sequence[str]) -> str:
    """Why new files named before the known ones make a refresh read those again (see `Plan.added_before`)."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    return (
        f"{shown} {'is' if one else 'are'} new but named before files already read, so those are read again "
        f"after {'it' if one else 'them'}: a line also in {'it' if one else 'them'} now counts as repeated in the "
        "later file"
    )


def range_tags(start: str | None, end: str | None) -> dict[str, str]:
    return {RANGE_START_TAG: start, RANGE_END_TAG: end} if start is not None and end is not None else {}


def plan(files: Mapping[str, str], stored: Mapping[str, str], keys: Sequence[str], kind: str = NEW_DATA) -> Plan:
    """The refresh for `files` (name -> sha256 now), `stored` (key -> sha256 storage prepared) and `keys`.

    New files become keys after the existing ones, in file-name order; keys whose file is gone are
    deleted. A line is judged against every file whose name sorts before its own (repeated lines), so a
    new, changed or deleted file means reading again every file whose name sorts after it: "new data
    only" reads the range of keys (in partition order, which is the order files arrived) that covers
    all of them; "everything" reads every key. Raises `FileNameError` for a file whose name cannot be a key.
    """
    for name in files:
        check_key(name)
    kept = [k for k in keys if k in files]
    delete = [k for k in keys if k not in files]
    add = sorted(n for n in files if n not in set(kept))
    order = kept + add
    changed = [k for k in order if stored.get(k) != files[k]]
    if not order:
        return Plan(add, delete, order, changed, None, None)
    if kind == EVERYTHING:
        return Plan(add, delete, order, changed, order[0], order[-1])
    moved = changed + delete
    positions = [i for i, k in enumerate(order) if moved and k >= min(moved)]
    if not positions:
        return Plan(add, delete, order, changed, None, None)
    return Plan(add, delete, order, changed, order[positions[0]], order[positions[-1]])


def named_keys(tags: Mapping[str, str]) -> list[str]:
    """The purchase files a run's tags name: its range's first and last file, or its one file."""
    if RANGE_START_TAG in tags or RANGE_END_TAG in tags:
        return list(dict.fromkeys(tags[t] for t in (RANGE_START_TAG, RANGE_END_TAG) if t in tags))
    return [tags[PARTITION_TAG]] if PARTITION_TAG in tags else []


def not_in_folder(key: str, data_dir: object) -> str:
    """Why a run cannot read a file it names that the data folder does not hold, and what to do."""
    shown = key if len(key) <= 80 and key.isprintable() else repr(key[:80]) + "…"
    return (
        f"{shown}: this refresh was planned to read this purchase file, but the data folder {data_dir} holds no "
        "file of that name (it was removed or renamed after the refresh was planned, or the name was added by "
        "hand). Put the file back and refresh again, or simply refresh again: a new refresh reads the files the "
        "folder holds now."
    )


def keys_in_range(keys: Sequence[str], start: str, end: str) -> list[str]:
    """The keys from `start` to `end` in partition order (what a run with those tags reads)."""
    first, last = list(keys).index(start), list(keys).index(end)
    return list(keys[first : last + 1])
