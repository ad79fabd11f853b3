"""Updating the model with new days against training it again: is the update as good, and how much cheaper?

On a generated set (the days in time order), the last `--test-days` days are the test: what customers
bought then that they had never bought before. Before them, the last `--days` days are the "new data".
Three models, all with the settings tuning chose on the older part:

- trained on the older part only (stale: what the shop had before the new days),
- that model brought up to date with the new days (`model_update.update_model`: new purchases added to
  the customers' histories, item factors as trained),
- trained again on the older part and the new days (what "everything" does).

Prints, per model, NDCG@10 and recall@10 on the new-products lists of a seeded sample of test customers,
the share of top-10 lists the update shares with the full training, and CPU seconds of the update and of
the training it replaces.

    python -m bench.model_update --dataset 1m --days 1 7 30 [--cache DIR]
    python -m bench.model_update --dataset tafeng --days 1 7 --test-days 14   # the real grocery export
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.model_quality import CACHE
from bench.training_speed import prepared
from dagster_project import model_update, training
from dagster_project.model_card import ModelParams
from dagster_project.recommender import RecommenderModel


def _ndcg(ranked: list[str], relevant: set[str], k: int = 10) -> tuple[float, float]:
    gains = [1.0 / np.log2(i + 2) for i, p in enumerate(ranked[:k]) if p in relevant]
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return (sum(gains) / ideal if ideal else 0.0), len(gains) / len(relevant)


def _measure(model: RecommenderModel, wanted: dict[str, set[str]]) -> tuple[float, float, dict[str, list[str]]]:
    ndcg, recall, lists = [], [], {}
    for user, relevant in wanted.items():
        ranked = model.recommend(user)["product_id"].astype(str).tolist()
        lists[user] = ranked
        n, r = _ndcg(ranked, relevant)
        ndcg.append(n)
        recall.append(r)
    return float(np.mean(ndcg)), float(np.mean(recall)), lists


def tables(name: str, cache: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Prepared transactions, products and customers of a generated set, or of the real Ta Feng export."""
    if name != "tafeng":
        return prepared(name, cache)[:3]
    from bench import tafeng
    from dagster_project import ingest, preparation, validation

    data = tafeng.dataset(cache)
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    return transactions, products, preparation.prepare_users(frames)[0]


def run(name: str, days: int, test_days: int, users: int, cache: Path, params: ModelParams | None) -> dict:
    transactions, products, customers = tables(name, cache)
    times = pd.to_datetime(transactions["timestamp"], utc=True)
    end = times.max()
    test_start = end - pd.Timedelta(days=test_days)
    new_start = test_start - pd.Timedelta(days=days)
    older = transactions[times < new_start].reset_index(drop=True)
    new = transactions[(times >= new_start) & (times < test_start)].reset_index(drop=True)
    test = transactions[times >= test_start]
    history = pd.concat([older, new], ignore_index=True)

    if params is None:  # the settings tuning picks on the older part (the update keeps them)
        params = training.train_model(older, products, customers).params
    started = time.process_time()
    stale = training.train_model(older, products, customers, fixed=params)
    stale_cpu = time.process_time() - started
    started = time.process_time()
    full = training.train_model(history, products, customers, fixed=params)
    full_cpu = time.process_time() - started
    covered = model_update.training_data({"new": "x"}, "", model_update.latest(new["timestamp"]))
    started = time.process_time()
    updated, changed = model_update.update_model(replace(stale), new, covered, ["new"])
    update_cpu = time.process_time() - started

    # test customers: known before the test, buying products they had not bought before it
    seen = {str(u): set(map(str, p)) for u, p in history.groupby("user_id")["product_id"].unique().items()}
    wanted: dict[str, set[str]] = {}
    for user, bought in test.groupby("user_id")["product_id"].unique().items():
        if str(user) in seen and (fresh := set(map(str, bought)) - seen[str(user)]):
            wanted[str(user)] = fresh
    rng = np.random.default_rng(0)
    picked = sorted(rng.choice(sorted(wanted), size=min(users, len(wanted)), replace=False))
    wanted = {u: wanted[u] for u in picked}
    results = {label: _measure(m, wanted) for label, m in (("stale", stale), ("update", updated), ("full", full))}
    overlap = np.mean(
        [len(set(results["update"][2][u]) & set(results["full"][2][u])) / 10 for u in wanted if results["full"][2][u]]
    )
    return {
        "dataset": name,
        "new days": days,
        "new purchases": len(new),
        "customers updated": len(changed),
        "test customers": len(wanted),
        "NDCG@10 stale": results["stale"][0],
        "NDCG@10 update": results["update"][0],
        "NDCG@10 full": results["full"][0],
        "recall@10 update": results["update"][1],
        "recall@10 full": results["full"][1],
        "top-10 shared with full": float(overlap),
        "update CPU s": update_cpu,
        "training CPU s": full_cpu,
        "stale training CPU s": stale_cpu,
        "params": params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m")
    parser.add_argument("--days", nargs="+", type=int, default=[1, 7, 30])
    parser.add_argument("--test-days", type=int, default=14)
    parser.add_argument("--users", type=int, default=2000, help="test customers measured (a seeded sample)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    rows, params = [], None
    for days in args.days:
        row = run(args.dataset, days, args.test_days, args.users, args.cache, params)
        params = row.pop("params")
        rows.append(row)
        print(row, flush=True)
    print(f"\nsettings (tuned on the older part of the first cut): {params}\n")
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
