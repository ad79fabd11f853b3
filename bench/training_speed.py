"""Training at scale: one `training.train_model` call (tuning, holdout figures, final fit) on a generated set.

Prints wall and CPU seconds, the machine's load, the process's resident memory before training (the
prepared tables) and at its peak during training (sampled every 20 ms), the settings chosen, the
tuning sample and the model card's test figures, so a change to training can be checked for speed,
memory and quality on the same data. The prepared tables are cached beside the generated data
(CACHE/NAME/prepared.pkl, CACHE = bench/.data unless --cache) so repeated runs time training only.

    python -m bench.training_speed --dataset 1m [--repeat 2] [--threads 1] [--profile] [--cache DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pickle
import pstats
import threading
import time
from pathlib import Path

import pandas as pd

from bench.model_quality import CACHE
from bench.scale import dataset
from dagster_project import features, ingest, preparation, training, validation


def prepared(name: str, cache: Path = CACHE) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Prepared transactions, products, users and the interaction table, as the pipeline hands them over."""
    data = dataset(name, cache)
    cached = data / "prepared.pkl"
    if cached.exists():
        with cached.open("rb") as f:
            return pickle.load(f)
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    users, _ = preparation.prepare_users(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    tables = (transactions, products, users, features.interaction_table(transactions))
    with cached.open("wb") as f:
        pickle.dump(tables, f)
    return tables


def _rss() -> int:
    """This process's resident memory now, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


class PeakMemory:
    """The largest resident memory seen while the block runs, sampled every 20 ms on a thread."""

    def __enter__(self) -> PeakMemory:
        self.before = self.peak = _rss()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.02)

    def __exit__(self, *_: object) -> None:
        self._running = False
        self._thread.join()


def measure(name: str, profile: bool, cache: Path = CACHE) -> dict:
    transactions, products, users, interactions = prepared(name, cache)
    profiler = cProfile.Profile() if profile else None
    load = os.getloadavg()[0]
    with PeakMemory() as memory:
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        model = training.train_model(transactions, products, users, interactions=interactions)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    card = model.card
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    figures = {
        f"{kind}_{m}": round(getattr(metrics["svd"], m), 4)
        for kind, metrics in card.metrics.items()
        for m in ("ndcg", "coverage", "users")
    }
    return {
        "dataset": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "load_1min": round(load, 2),
        "tables_rss_mb": round(memory.before / 1e6),
        "peak_rss_mb": round(memory.peak / 1e6),
        "tuning_customers": card.tuning.users if card.tuning else None,
        "trials": len(card.trials),
        "params": card.params.__dict__,
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m", choices=["3k", "100k", "1m", "10m"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (0: as the machine has)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the generated data sets")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads or None):
        for _ in range(args.repeat):
            print(json.dumps(measure(args.dataset, args.profile, args.cache)), flush=True)


if __name__ == "__main__":
    main()
