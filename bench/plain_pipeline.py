"""The RecoMart pipeline as a plain script: the same pure functions as the Dagster assets, no Dagster.

The scale benchmark runs it beside `complete_pipeline_job` on the same data; the ratio of the two wall
times is the orchestration overhead. Prints one JSON line of per-stage seconds.

    python -m bench.plain_pipeline --data DIR --storage DIR --models DIR
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dagster_project import customer_lists, features, ingest, model_store, preparation, training, validation
from dagster_project.fileio import write_json, write_parquet


def run(data: Path, storage: Path, models: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3) as pool:
        users, products, tx = pool.map(
            lambda read: read(data), (ingest.read_users, ingest.read_products, ingest.read_transactions)
        )
    for name, frame in (("users", users), ("products", products), ("transactions", tx)):
        write_parquet(frame, storage / "raw" / f"{name}.parquet")
    times["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = validation.Frames(users, products, tx)
    report = validation.validate(frames)
    write_json(report.to_dict(), storage / "validation" / "validation_report.json")
    times["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    p_products, _ = preparation.prepare_products(frames)
    p_users, _ = preparation.prepare_users(frames)
    p_tx, _ = preparation.prepare_transactions(frames, p_products)
    for name, frame in (("users", p_users), ("products", p_products), ("transactions", p_tx)):
        write_parquet(frame, storage / "prepared" / f"{name}.parquet")
    times["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    user_features, item_features, interactions = features.build(p_tx, p_users, p_products)
    write_parquet(user_features, storage / "features" / "user_features.parquet")
    write_parquet(item_features, storage / "features" / "item_features.parquet")
    write_parquet(interactions, storage / "features" / "interactions.parquet")
    times["features"] = time.perf_counter() - t

    t = time.perf_counter()
    model = training.train_model(p_tx, p_products, p_users, interactions=interactions)
    model_store.publish(model, models, "plain")
    times["train"] = time.perf_counter() - t

    t = time.perf_counter()
    customer_lists.write_for_model(model, storage)
    customer_lists.summary(storage)
    times["lists"] = time.perf_counter() - t
    times["total"] = sum(times.values())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--storage", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps({k: round(v, 3) for k, v in run(args.data, args.storage, args.models).items()}))


if __name__ == "__main__":
    main()
