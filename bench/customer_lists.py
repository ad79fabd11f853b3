"""Every customer's lists: wall and CPU seconds of `customer_lists.write_for_model` on a trained model.

The model is trained once per dataset by the pipeline's own functions (as bench/plain_pipeline.py does)
and kept under bench/.data/models-<dataset>; later runs load it, so only the lists are measured. CPU
seconds are the process's (the list writer uses one BLAS thread and encodes Parquet on a second thread),
the figure to compare on a shared machine; the load average is printed beside it.

    python -m bench.customer_lists --dataset 1m [--repeat 3] [--model FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.scale import dataset
from dagster_project import customer_lists, features, ingest, model_store, preparation, training, validation
from dagster_project.recommender import RecommenderModel, load_model

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".data"


def trained(name: str) -> Path:
    """The served model file for a dataset, trained and published once, then reused."""
    models = CACHE / f"models-{name}"
    served = models / model_store.MODEL_FILENAME
    if served.is_file():
        return served
    data = ROOT / "data" if name == "sample" else dataset(name, CACHE)
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    users, _ = preparation.prepare_users(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    model = training.train_model(transactions, products, users, interactions=features.interaction_table(transactions))
    return model_store.publish(model, models, "bench")


def measure(model: RecommenderModel, repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of `repeat` runs, each writing to a fresh folder."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="recomart-lists-") as work:
        for i in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            customer_lists.write_for_model(model, Path(work) / str(i))
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m", choices=["sample", "100k", "1m"])
    parser.add_argument("--model", type=Path, help="a model file to use instead of the dataset's")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = args.model or trained(args.dataset)
    model = load_model(path)
    runs = measure(model, args.repeat)
    print(f"Model {path}: {model.n_users:,} customers with purchases, {model.n_items:,} products")
    for wall, cpu in runs:
        print(f"- write_for_model: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(
        f"median: {statistics.median(w for w, _ in runs):.2f} s wall, {statistics.median(c for _, c in runs):.2f} s CPU"
        f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
