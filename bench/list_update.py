"""Updating every customer's lists after a model update vs writing them all, and reading them: wall, CPU, peak RSS.

The updated model is the given one after a new purchase file, as an update makes it: `--changed` random
customers with purchases bought 1-3 products more (their purchase rows and counts change, so they move in the
customer order) and `--new` new customers bought 1-3 products; the products' side as trained. Each step runs in
its own process (its peak RSS is its own; every one loads the model first, shown as "model"):

- stored: `write_for_model` of the trained model (the lists an update builds on);
- full: `write_for_model` of the updated model (what the update must equal);
- update: `update_for_model` of the updated model on top of the stored lists (the layer beside the base);
- update again: a second update on top of that (the next night: the layer carried over, other buyers);
- reads: on the updated lists (base and layer) and on the full write: `summary`, `preview`, one customer's
  lists, the Parquet download (composed from base and layer at the click); with BENCH_READ_ALL=1 also every
  row (`read`) and the CSV (about 10 GB at 10M);
- check: the updated lists and the full write compared: the summaries, the row counts, and every value of the
  rows of the changed customers and of as many customers who did not change (sorted by customer, list, rank;
  tests/test_list_update.py and tests/test_list_layers.py compare every row).

    python -m bench.list_update --model FILE [--changed 25000] [--new 1000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from dagster_project import customer_lists, model_update
from dagster_project.recommender import RecommenderModel, load_model
from tests.workspace import sorted_lists

STEPS = ("stored", "full", "update", "update again", "reads", "check")


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


def _reads(figures: dict, storage: Path, label: str) -> None:
    _timed(figures, f"summary ({label})", lambda: customer_lists.summary(storage))
    _timed(figures, f"preview ({label})", lambda: customer_lists.preview(storage))
    one = [("user_id", "==", "1001")]
    _timed(figures, f"read one customer ({label})", lambda: customer_lists.read(storage, filters=one))
    if os.environ.get("BENCH_READ_ALL"):  # every row as pandas and CSV: about 10 GB at 10M
        frames = [_timed(figures, f"read ({label})", lambda: customer_lists.read(storage))]
        _timed(figures, f"CSV ({label})", lambda: len(customer_lists.to_csv_bytes(frames.pop())))
    _timed(figures, f"Parquet download ({label})", lambda: len(customer_lists.parquet_bytes(storage)))


def _same(a: Path, b: Path, users: list[str]) -> str:
    """The given customers' rows of both (sorted by customer, list, rank): how many, and how many differ (every
    value equal but the score, which may differ in its last rounded digit: a block's matrix products round by
    the block's customers, and the full write scores the unchanged customers in other blocks)."""
    frames = [sorted_lists(customer_lists.read(s, filters=[("user_id", "in", users)])) for s in (a, b)]
    if len(frames[0]) != len(frames[1]):
        return f"{len(frames[0]):,} rows against {len(frames[1]):,}"
    other = frames[0].drop(columns=["score", "because"]).ne(frames[1].drop(columns=["score", "because"]))
    other = other & ~(frames[0].isna() & frames[1].isna()).drop(columns=["score", "because"])
    because = frames[0]["because"].map(tuple) != frames[1]["because"].map(tuple)
    scores = (frames[0]["score"] - frames[1]["score"]).abs()
    return (
        f"{len(frames[0]):,} rows, {int(other.any(axis=1).sum() + because.sum())} differ, "
        f"{int((scores > 0).sum())} scores differ by at most {scores.max():.0e}"
    )


def run_step(step: str, model_file: Path, work: Path, changed: int, new: int) -> dict:
    """One step in this process; its figures."""
    figures: dict = {}
    model, (after, ids) = _timed(figures, "model", lambda: (m := load_model(model_file), updated(m, changed, new)))
    stored, full, again = work / "stored", work / "full", work / "again"
    if step == "stored":
        _timed(figures, step, lambda: customer_lists.write_for_model(model, stored))
    elif step == "full":
        _timed(figures, step, lambda: customer_lists.write_for_model(after, full))
    elif step == "update":
        _timed(figures, step, lambda: customer_lists.update_for_model(after, stored, ids))
        figures["layer_rows"] = pq.ParquetFile(customer_lists.layer_path(stored)).metadata.num_rows
    elif step == "update again":
        later, later_ids = updated(after, changed, 0, seed=8)
        _timed(figures, step, lambda: customer_lists.update_for_model(later, again, later_ids))
        figures["layer_rows"] = pq.ParquetFile(customer_lists.layer_path(again)).metadata.num_rows
    elif step == "reads":
        _reads(figures, stored, "base and layer")
        _reads(figures, full, "one file")
    elif step == "check":
        a, b = customer_lists.summary(stored), customer_lists.summary(full)
        figures["same_summary"] = all(
            v.equals(b[k]) if isinstance(v, pd.DataFrame) else v == b[k] for k, v in a.items()
        )
        figures["rows"] = a["rows"]
        figures["same_rows"] = (
            a["rows"] == b["rows"] == pq.ParquetFile(customer_lists.dataset_path(full)).metadata.num_rows
        )
        others = list(np.random.default_rng(3).choice(model.user_ids.to_numpy(), len(ids), replace=False))
        figures["same_changed_customers"] = _same(stored, full, ids)
        figures["same_other_customers"] = _same(stored, full, [u for u in others if u not in set(ids)])
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
            if step == "update":  # the updated lists, for a second update on top (a copy: it replaces the layer)
                shutil.copytree(Path(work) / "stored", Path(work) / "again")
    load = os.getloadavg()[0]
    print(f"\nModel {args.model}; {args.changed:,} customers with purchases and {args.new:,} new ones bought")
    print(f"(load average {load:.1f} on {os.cpu_count()} cores)\n")
    print("| step | wall (s) | CPU (s) | peak RSS (MB) |\n|---|---|---|---|")
    for step in ("stored", "full", "update", "update again"):
        f = results[step][step]
        print(f"| {step} | {f['wall']:.1f} | {f['cpu']:.1f} | {f['peak_mb']:,.0f} |")
    for name, f in results["reads"].items():
        if name != "model":
            print(f"| {name} | {f['wall']:.1f} | {f['cpu']:.1f} | {f['peak_mb']:,.0f} |")
    model = results["update"]["model"]
    print(
        f"| (each step: loading and updating the model) | {model['wall']:.1f} | {model['cpu']:.1f} | "
        f"{model['peak_mb']:,.0f} |"
    )
    check = results["check"]
    print(
        f"\n{check['rows']:,} rows; layer rows after one update {results['update']['layer_rows']:,}, after two "
        f"{results['update again']['layer_rows']:,}; the update equals the full write: summary "
        f"{check['same_summary']}, rows {check['same_rows']}; changed customers: "
        f"{check['same_changed_customers']}; as many others: {check['same_other_customers']}"
    )


if __name__ == "__main__":
    main()
