"""Model file: size and load time of the data-only format against the earlier pickle format.

The model is trained on a generated dataset (1M transactions by default) with the customers' real
profiles; the earlier format (a checksummed header, then a pickle of the same fields) and its loader
are rebuilt here only to compare against, on a file this script itself just wrote.

    python -m bench.model_file [--dataset 1m] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.model_quality import dataset
from dagster_project import ingest, preparation, training, validation
from dagster_project.recommender import RecommenderModel, load_model, save_model

ROOT = Path(__file__).resolve().parent.parent


def train(name: str) -> RecommenderModel:
    data = ROOT / "data" if name == "sample" else dataset(name, ROOT / "bench" / ".data")
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    users, _ = preparation.prepare_users(frames)
    products, _ = preparation.prepare_products(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    return training.train_model(transactions, products, users)


def save_pickle_era(model: RecommenderModel, path: Path) -> None:
    """The earlier format: a header line with the format and the payload's sha256, then the pickled fields."""
    payload = pickle.dumps(
        {k: v for k, v in model.__dict__.items() if not k.startswith("_")}, protocol=pickle.HIGHEST_PROTOCOL
    )
    path.write_bytes(b"RECOMART-MODEL 2 %s\n" % hashlib.sha256(payload).hexdigest().encode() + payload)


def load_pickle_era(path: Path) -> RecommenderModel:
    """As the earlier loader did it: read, verify the checksum, unpickle, rebuild the derived arrays."""
    with open(path, "rb") as handle:
        header = handle.readline(200)
        payload = handle.read()
    if hashlib.sha256(payload).hexdigest().encode() != header.split()[2]:
        raise ValueError("checksum")
    model = RecommenderModel.__new__(RecommenderModel)
    model.__dict__.update(pickle.loads(payload))  # our own file, written just above
    model.__post_init__()
    return model


def timed(load, path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        load(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m", choices=["sample", "100k", "1m"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    model = train(args.dataset)
    work = Path(tempfile.mkdtemp(prefix="recomart-model-file-"))
    try:
        old, new = work / "pickle_era.pkl", work / "collaborative_filtering.pkl"
        save_pickle_era(model, old)
        save_model(model, new)
        assert load_model(new).recommend(model.user_ids[0]).equals(model.recommend(model.user_ids[0]))
        old_s, new_s = timed(load_pickle_era, old, args.repeat), timed(load_model, new, args.repeat)
        old_mb, new_mb = old.stat().st_size / 1e6, new.stat().st_size / 1e6
        print(
            f"Model on {args.dataset}: {model.n_users:,} customers with purchases, {len(model.user_profiles):,} "
            f"profiles, {model.n_items:,} products, {model.counts.nnz:,} customer-product pairs"
        )
        print(f"- earlier pickle format: {old_mb:.1f} MB, load {old_s * 1000:.0f} ms (median of {args.repeat})")
        print(
            f"- data-only format:      {new_mb:.1f} MB ({new_mb / old_mb:.2f}x), load {new_s * 1000:.0f} ms "
            f"({new_s / old_s:.2f}x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
