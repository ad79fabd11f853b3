"""What reading purchase files costs per file, stage by stage: the work of the `raw_transactions` step
(older files' stored line hashes, the file read, its line hashes, the rules, the seven stored files) and
of `prepared_transactions`, on files in a data folder, without Dagster around it. CPU seconds on one
thread (the machine is shared) and wall seconds.

The files are read in name order; the stored line hashes of files under `--storage` whose name sorts
before the first are the history (as a refresh of new data only sees them), e.g. the next day on top of
10M, its history's hashes stored once by `--store-history`:

    python -m bench.file_reading --data DIR --storage ST --store-history transactions.csv
    python -m bench.file_reading --data DIR --storage ST --files transactions_2026-11-01.csv
    python -m bench.file_reading --data DAILY --storage ST2 --files 'transactions_*.csv'   # many small files
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from dagster_project import ingest, preparation, repeated_lines, transaction_store, validation
from dagster_project.contract import PRODUCTS, TRANSACTIONS, USERS
from dagster_project.fileio import sha256_of, write_json, write_parquet

CPU: dict[str, float] = defaultdict(float)
WALL: dict[str, float] = defaultdict(float)


@contextmanager
def stage(name: str):
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    CPU[name] += time.process_time() - cpu
    WALL[name] += time.perf_counter() - wall


def store_history(data: Path, storage: Path, name: str) -> None:
    """Store one file's line hashes as `raw_transactions` does (the history a later file is judged against)."""
    frame = ingest.read_file(data / name, TRANSACTIONS)
    hashes = repeated_lines.row_hashes(frame.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN]))
    write_parquet(hashes, transaction_store.hashes_path(storage, name))


def read_files(data: Path, storage: Path, keys: list[str]) -> None:
    """The per-file work of `raw_transactions` then `prepared_transactions`, timed by stage."""
    with stage("customers and products (once)"):
        users, products = ingest.read_entity(data, USERS), ingest.read_entity(data, PRODUCTS)
        whole = validation.Frames(users, products, pd.DataFrame())
        validation.validate(whole, ("users", "products"))
        prepared_products, _ = preparation.prepare_products(whole.with_masks(whole.masks))
    stored = sorted(
        p.name.removesuffix(".hashes.parquet")
        for p in (storage / transaction_store.RAW_FOLDER).glob("*.hashes.parquet")
    )
    earlier = repeated_lines.EarlierLines()
    # the customers' and products' ids indexed once for all files, as the step does (older code: no such field)
    shared = {"lookups": {}} if "lookups" in validation.Frames.__dataclass_fields__ else {}
    with stage("raw: older files' line hashes"):
        earlier.add_stored(transaction_store.hashes_path(storage, k) for k in stored if k < keys[0])
    for key in keys:
        path = data / key
        with stage("raw: sha256"):
            sha256 = sha256_of(path)
        with stage("raw: read"):
            frame = ingest.read_file(path, TRANSACTIONS)
        with stage("raw: line hashes"):
            hashes = repeated_lines.row_hashes(frame.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN]))
        with stage("raw: rules (with repeated lines)"):
            frames = validation.Frames(
                users, products, frame, earlier_rows=earlier if len(earlier) else None, row_hashes=hashes, **shared
            )
            part = validation.validate(frames, ("transactions",))
        with stage("raw: store 5 files"):
            write_parquet(frame, transaction_store.raw_path(storage, key))
            write_parquet(hashes, transaction_store.hashes_path(storage, key))
            write_parquet(frames.masks["transactions"], transaction_store.masks_path(storage, key))
            write_json({"report": part.to_dict()}, transaction_store.result_path(storage, key))
            write_json(
                {"file": key, "sha256": sha256, "rows": len(frame)}, transaction_store.raw_manifest(storage, key)
            )
        with stage("raw: keep the file's lines"):
            earlier.add(hashes)
        with stage("prepare: read back"):
            raw = pd.read_parquet(transaction_store.raw_path(storage, key))
            masks = pd.read_parquet(transaction_store.masks_path(storage, key))
        with stage("prepare: prepare"):
            ready = validation.Frames(pd.DataFrame(), pd.DataFrame(), raw).with_masks({"transactions": masks})
            prepared, dropped = preparation.prepare_transactions(ready, prepared_products)
        with stage("prepare: store 2 files"):
            write_parquet(prepared, transaction_store.prepared_path(storage, key))
            write_json(
                {"file": key, "rows": len(prepared), "dropped": dropped},
                transaction_store.prepared_manifest(storage, key),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--storage", type=Path, required=True, help="a scratch storage folder (written)")
    parser.add_argument("--files", nargs="+", default=[], help="file names or patterns to read, in name order")
    parser.add_argument("--store-history", metavar="FILE", help="store this file's line hashes first")
    args = parser.parse_args()
    with threadpool_limits(1):
        if args.store_history:
            store_history(args.data, args.storage, args.store_history)
        names = sorted(p.name for p in args.data.iterdir())
        keys = [n for n in names if any(fnmatch.fnmatchcase(n, f) for f in args.files)]
        if keys:
            read_files(args.data, args.storage, keys)
    per_file = {k: round(v / max(len(keys), 1) * 1000, 2) for k, v in CPU.items() if not k.endswith("(once)")}
    print(
        json.dumps(
            {
                "files": len(keys),
                "cpu_s": {k: round(v, 3) for k, v in CPU.items()},
                "wall_s": {k: round(v, 3) for k, v in WALL.items()},
                "cpu_ms_per_file": per_file,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
