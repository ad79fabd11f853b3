"""Model quality: RecoMart's SVD beside the models a shop would pick instead, on a time holdout.

Protocol (the same as the model card's): the latest 20 % of transactions by time are the test set;
customers who bought before the cutoff and something relevant after it are scored, on two lists:
"new" (products not bought before; bought ones excluded) and "rebuy" (everything bought after the
cutoff; nothing excluded). Every model that has settings chooses them on a validation slice cut the
same way from the training part, never on the test set.

Peers: best-sellers, "buy again" (rebuy list), implicit's ALS (benfred/implicit, if installed:
`pip install -r requirements-bench.txt`), EASE (Steck 2019), and untuned PureSVD settings.

    python -m bench.model_quality --datasets sample 1m
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent

from bench.scale import dataset
from dagster_project import evaluation as ev
from dagster_project import ingest, preparation, training, validation
from dagster_project.recommender import FactorScorer, ModelParams, blend_rebuy, fit_factors, shrink, weigh

K = 10
Fit = Callable[[sp.csr_matrix], ev.ScoreFn]


def load(name: str) -> pd.DataFrame:
    data = ROOT / "data" if name == "sample" else dataset(name, ROOT / "bench" / ".data")
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    return transactions, products


def matrices(tx: pd.DataFrame, users: pd.Index, items: pd.Index, share: float = 0.2):
    before, after, _ = ev.time_split(tx, share)
    return training.count_matrix(before, users, items), training.count_matrix(after, users, items), before


# --- peers -----------------------------------------------------------------------------------
def svd_fit(params: ModelParams, rebuy: bool = False) -> Fit:
    def fit(train: sp.csr_matrix) -> ev.ScoreFn:
        weighted = weigh(train, params.weighting)
        v, s = fit_factors(weighted, params.factors)
        scorer = FactorScorer(v, shrink(s, params.shrinkage))
        if rebuy:
            return lambda rows: blend_rebuy(scorer(weighted[rows]), train[rows].toarray(), params.rebuy_weight)
        return lambda rows: scorer(weighted[rows])
    return fit


def ease_fit(lam: float) -> Fit:
    def fit(train: sp.csr_matrix) -> ev.ScoreFn:
        x = (train > 0).astype(np.float32).tocsr()
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += lam
        p = np.linalg.inv(gram)
        b = (-p / np.diag(p)).astype(np.float32)
        np.fill_diagonal(b, 0.0)
        return lambda rows: np.asarray(x[rows] @ b)
    return fit


def als_fit(factors: int, alpha: float, regularization: float) -> Fit:
    def fit(train: sp.csr_matrix) -> ev.ScoreFn:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = weigh(train, "log")
        confidence.data *= alpha
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=1.0, iterations=15,
                                        random_state=0, calculate_training_loss=False)
        with threadpool_limits(1, "blas"):
            model.fit(confidence.tocsr(), show_progress=False)
        users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return lambda rows: users[rows] @ items.T
    return fit


def has_implicit() -> bool:
    try:
        import implicit  # noqa: F401
        return True
    except ImportError:
        return False


def tune(candidates: dict[str, Fit], train: sp.csr_matrix, validation_m: sp.csr_matrix, list_kind: str) -> tuple[str, Fit]:
    holdout = ev.make_holdout(train, validation_m)
    users = training._sample(holdout.users(list_kind), 2000, 0)
    scored = {name: ev.evaluate(fit(train), holdout, list_kind, K, users)["ndcg"] for name, fit in candidates.items()}
    best = max(scored, key=scored.get)
    return best, candidates[best]


# --- measurement ------------------------------------------------------------------------------
def latency_ms(score: ev.ScoreFn, users: np.ndarray, exclude: sp.csr_matrix | None, n: int = 300) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    picks = rng.choice(users, min(n, users.size), replace=False)
    times = []
    for u in picks:
        start = time.perf_counter()
        ev.top_lists(score(np.array([u])), K, exclude[[u]] if exclude is not None else None)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def score_all_seconds(score: ev.ScoreFn, n_users: int, exclude: sp.csr_matrix) -> float:
    start = time.perf_counter()
    for i in range(0, n_users, 2048):
        rows = np.arange(i, min(i + 2048, n_users))
        ev.top_lists(score(rows), K, exclude[rows])
    return time.perf_counter() - start


def run(name: str) -> list[dict]:
    tx, products = load(name)
    users, items = pd.Index(tx["user_id"].unique()), pd.Index(products["product_id"])
    train, test, train_tx = matrices(tx, users, items)
    fit_m, val_m, _ = matrices(train_tx, users, items)
    holdout = ev.make_holdout(train, test)
    print(f"# {name}: {len(tx):,} transactions, {len(users):,} customers, {len(items):,} products; "
          f"{holdout.users('new').size:,} customers scored on new items, {holdout.users('rebuy').size:,} with re-buys",
          flush=True)

    start = time.perf_counter()
    chosen, _ = training.select_params(fit_m, val_m, training.TrainingSettings())
    select_s = time.perf_counter() - start
    peers: dict[str, tuple[Fit, Fit | None]] = {
        f"RecoMart SVD (auto: k={chosen.factors}, shrink={chosen.shrinkage}, {chosen.weighting})":
            (svd_fit(chosen), svd_fit(chosen, rebuy=True)),
        "best-sellers": (lambda m: ev.popularity_scorer(m), lambda m: ev.popularity_scorer(m)),
        "buy again": (None, lambda m: ev.buy_again_scorer(m)),
    }
    for k in (32, 64, 128):
        if k < min(train.shape):
            peers[f"PureSVD binary k={k}, no shrinkage"] = (svd_fit(ModelParams(k, 0.0, "binary")), None)
    peers["PureSVD log k=64, no shrinkage"] = (svd_fit(ModelParams(min(64, min(train.shape) - 1), 0.0, "log")), None)
    ease_name, ease = tune({f"EASE lambda={lam:g}": ease_fit(lam) for lam in (50, 200, 500, 2000)}, fit_m, val_m, "new")
    peers[ease_name + " (tuned)"] = (ease, ease)
    if has_implicit():
        grid = {f"implicit ALS k=64 alpha={a:g} reg={r:g}": als_fit(64, a, r) for a in (10, 100) for r in (1, 100, 1000)}
        als_name, als = tune(grid, fit_m, val_m, "new")
        peers[als_name + " (tuned)"] = (als, als)
        peers["implicit ALS defaults (k=100, reg=0.01, alpha=1)"] = (als_fit(100, 1.0, 0.01), None)

    rows = []
    new_users, rebuy_users = holdout.users("new"), holdout.users("rebuy")
    for label, (fit_new, fit_rebuy) in peers.items():
        row: dict = {"dataset": name, "model": label}
        for list_kind, fit in (("new", fit_new), ("rebuy", fit_rebuy)):
            if fit is None:
                continue
            start = time.perf_counter()
            score = fit(train)
            row["train_s"] = round(time.perf_counter() - start + (select_s if label.startswith("RecoMart") else 0), 2)
            metrics = ev.evaluate(score, holdout, list_kind, K)
            row.update({f"{list_kind}_{m}": round(v, 4) for m, v in metrics.items() if m != "users"})
            if list_kind == "new":
                row["score_all_s"] = round(score_all_seconds(score, train.shape[0], train), 2)
                row["p50_ms"], row["p95_ms"] = (round(x, 3) for x in latency_ms(score, new_users, train))
        rows.append(row)
        print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    cols = [("model", "model"), ("new_ndcg", "NDCG@10 new"), ("new_precision", "P@10 new"), ("new_recall", "R@10 new"),
            ("new_hit_rate", "hit new"), ("new_coverage", "coverage new"), ("rebuy_ndcg", "NDCG@10 re-buys"),
            ("rebuy_precision", "P@10 re-buys"), ("rebuy_recall", "R@10 re-buys"), ("train_s", "train (s)"),
            ("score_all_s", "score all (s)"), ("p50_ms", "p50 (ms)"), ("p95_ms", "p95 (ms)")]
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        out.append(f"\n**{name}**\n")
        out.append("| " + " | ".join(h for _, h in cols) + " |")
        out.append("|" + "---|" * len(cols))
        for r in (r for r in rows if r["dataset"] == name):
            out.append("| " + " | ".join(str(r.get(c, "–")) for c, _ in cols) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["sample", "1m"], choices=["sample", "100k", "1m"])
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in run(name)]
    print(table(rows))


if __name__ == "__main__":
    main()
