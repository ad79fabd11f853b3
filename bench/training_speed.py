"""Training at scale: one `training.train_model` call (tuning, holdout figures, final fit) on a generated set.

Prints wall and CPU seconds, the machine's load, the settings chosen and the model card's test figures,
so a change to training can be checked for speed and for quality on the same data. The prepared tables
are cached beside the generated data (bench/.data/NAME/prepared.pkl) so repeated runs time training only.

    python -m bench.training_speed --dataset 1m [--repeat 2] [--threads 1] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pickle
import pstats
import time

import pandas as pd

from bench.model_quality import CACHE
from bench.scale import dataset
from dagster_project import features, ingest, preparation, training, validation


def prepared(name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Prepared transactions, products, users and the interaction table, as the pipeline hands them over."""
    data = dataset(name, CACHE)
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


def measure(name: str, profile: bool) -> dict:
    transactions, products, users, interactions = prepared(name)
    profiler = cProfile.Profile() if profile else None
    load = os.getloadavg()[0]
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
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads or None):
        for _ in range(args.repeat):
            print(json.dumps(measure(args.dataset, args.profile)), flush=True)


if __name__ == "__main__":
    main()
