"""Updating every customer's lists after a model update vs writing them all: wall, CPU seconds and peak RSS.

The updated model is the given one after a new purchase file, as an update makes it: `--changed` random
customers with purchases bought 1-3 products more (their purchase rows and counts change, so they move in the
customer order) and `--new` new customers bought 1-3 products; the products' side as trained. Each step runs in
its own process (its peak RSS is its own; every one loads the model first, shown as "model"):

- stored: `write_for_model` of the trained model (the lists an update builds on);
- full: `write_for_model` of the updated model (what the update must equal);
- update: `update_for_model` of the updated model on top of the stored lists;
- parts: the update's parts alone: reading the plan from the stored file, building the changed customers'
  lists, and writing those rows alone to a file of their own (what a delta layer beside the file would cost);
- check: the updated file and the full write compared, row group by row group, and byte for byte.

    python -m bench.list_update --model FILE [--changed 25000] [--new 1000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from dagster_project import customer_lists, list_building, list_update, model_update
from dagster_project.fileio import sha256_of
from dagster_project.recommender import RecommenderModel, load_model

STEPS = ("stored", "full", "update", "parts", "check")


def updated(model: RecommenderModel, changed: int, new: int, seed: int = 7) -> tuple[RecommenderModel, list[str]]:
    """The model after a purchase file where `changed` customers with purchases and `new` new customers bought 1-3
    products each (`model_update.update_model`, as the nightly refresh does); and the buyers' ids."""
    rng = np.random.default_rng(seed)
    buyers = model.user_ids[np.sort(rng.choice(model.n_users, changed, replace=False))]
    who = pd.Index([*buyers, *(f"NEW{i:07d}" for i in range(new))], dtype="string")
    bought = rng.integers(1, 4, len(who))
    purchases = pd.DataFrame(
        {
            "user_id": pd.array(np.repeat(who.to_numpy(), bought), dtype="string"),
            "product_id": model.items["product_id"].to_numpy()[rng.integers(0, model.n_items, bought.sum())],
            "amount": 1.0,
            "timestamp": pd.Timestamp.now(tz="UTC"),
        }
    )
    data = model_update.training_data({}, "", None)
    after, _ = model_update.update_model(model, purchases, data, ["next-day.csv"])
    return after, list(who)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(figures: dict, name: str, action) -> object:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    figures[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "peak_mb": _peak_mb()}
    return result


def run_step(step: str, model_file: Path, work: Path, changed: int, new: int) -> dict:
    """One step in this process; its figures."""
    from threadpoolctl import threadpool_limits

    figures: dict = {}
    model, (after, ids) = _timed(figures, "model", lambda: (m := load_model(model_file), updated(m, changed, new)))
    stored, full = work / "stored", work / "full"
    if step == "stored":
        _timed(figures, step, lambda: customer_lists.write_for_model(model, stored))
    elif step == "full":
        _timed(figures, step, lambda: customer_lists.write_for_model(after, full))
    elif step == "update":
        _timed(figures, step, lambda: customer_lists.update_for_model(after, stored, ids))
    elif step == "parts":
        path = customer_lists.dataset_path(work / "parts-source")
        with threadpool_limits(limits=1, user_api="blas"):
            plan = _timed(figures, "plan", lambda: list_update.plan(after, path, ids))
            positions = plan.order[plan.rebuilt]
            tables = _timed(figures, "build", lambda: list(list_building.build(after, only=positions)))
            delta = work / "delta.parquet"
            _timed(figures, "delta write", lambda: list_building.write(tables, delta))
        figures["rebuilt"] = int(plan.rebuilt.size)
        figures["delta_rows"] = pq.ParquetFile(delta).metadata.num_rows
    elif step == "check":
        a, b = customer_lists.dataset_path(stored), customer_lists.dataset_path(full)
        fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
        same = fa.num_row_groups == fb.num_row_groups and fa.schema_arrow.equals(fb.schema_arrow, check_metadata=True)
        same = same and all(fa.read_row_group(i).equals(fb.read_row_group(i)) for i in range(fa.num_row_groups))
        figures["same_tables"] = bool(same)
        figures["same_bytes"] = sha256_of(a) == sha256_of(b)
        figures["rows"] = fa.metadata.num_rows
        figures["row_groups"] = fa.num_row_groups
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model file (as the pipeline saves it)")
    parser.add_argument("--changed", type=int, default=25_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--work", type=Path, help="a folder for the files (default: a temporary one)")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)  # one step, in a child process
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.model, args.work, args.changed, args.new)))
        return
    with tempfile.TemporaryDirectory(prefix="recomart-list-update-", dir=args.work) as work:
        results = {}
        for step in STEPS:
            command = [sys.executable, "-m", "bench.list_update", "--model", str(args.model), "--work", work]
            command += ["--changed", str(args.changed), "--new", str(args.new), "--step", step]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[step] = json.loads(out.strip().splitlines()[-1])
            print(step, json.dumps(results[step]), flush=True)
            if step == "stored":  # the stored lists as they are before the update, for the parts (a hard link: the
                source = customer_lists.dataset_path(Path(work) / "parts-source")  # update replaces the file)
                source.parent.mkdir(parents=True)
                os.link(customer_lists.dataset_path(Path(work) / "stored"), source)
    load = os.getloadavg()[0]
    print(f"\nModel {args.model}; {args.changed:,} customers with purchases and {args.new:,} new ones bought")
    print(f"(load average {load:.1f} on {os.cpu_count()} cores)\n")
    print("| step | wall (s) | CPU (s) | peak RSS (MB) |\n|---|---|---|---|")
    for step in ("stored", "full", "update"):
        f = results[step][step]
        print(f"| {step} | {f['wall']:.1f} | {f['cpu']:.1f} | {f['peak_mb']:,.0f} |")
    for part in ("plan", "build", "delta write"):
        f = results["parts"][part]
        print(f"| update part: {part} | {f['wall']:.1f} | {f['cpu']:.1f} | {f['peak_mb']:,.0f} |")
    model = results["update"]["model"]
    print(
        f"| (each step: loading and updating the model) | {model['wall']:.1f} | {model['cpu']:.1f} | "
        f"{model['peak_mb']:,.0f} |"
    )
    check = results["check"]
    print(
        f"\n{check['rows']:,} rows in {check['row_groups']:,} row groups; customers built again "
        f"{results['parts']['rebuilt']:,} ({results['parts']['delta_rows']:,} rows); the update equals the full "
        f"write: tables {check['same_tables']}, bytes {check['same_bytes']}"
    )


if __name__ == "__main__":
    main()
