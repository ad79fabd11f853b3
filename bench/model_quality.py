"""Model quality: RecoMart's SVD beside the models a shop would pick instead, on a time holdout.

Protocol (the same as the model card's): the latest 20 % of transactions by time are the test set;
customers who bought before the cutoff and something relevant after it are scored, on two lists:
"new" (products not bought before; bought ones excluded) and "rebuy" (everything bought after the
cutoff; nothing excluded). Every model that has settings chooses them on a validation slice cut the
same way from the training part, never on the test set.

Ta Feng (real grocery purchases, bench/tafeng.py) is cut by date instead: train before 2001-02-01,
test from then on; tuning on a validation month cut at 2001-01-01.

Peers: best-sellers, "buy again" (rebuy list), implicit's ALS (benfred/implicit, if installed:
`pip install -r requirements-bench.txt`), item-kNN (cosine neighbours), EASE (Steck 2019) where the
catalogue allows, and untuned PureSVD settings. Every peer is a `Scorer` (dagster_project/scorers.py),
measured by the same `evaluation.evaluate_lists` as the model card, plus novelty (the mean popularity
rank of the products listed).

    python -m bench.model_quality --datasets sample 1m tafeng
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench import tafeng
from bench.scale import dataset
from dagster_project import evaluation as ev
from dagster_project import ingest, preparation, training, validation
from dagster_project.model_card import ModelParams
from dagster_project.scorers import BuyAgain, Popularity, Scorer, ShrunkSvd, item_neighbours, weigh

ROOT = Path(__file__).resolve().parent.parent
K = 10
CACHE = ROOT / "bench" / ".data"
# EASE inverts a dense items x items matrix: 23,812 products need 4.5 GB per float64 copy and ~10 minutes
# per setting on this machine, so it is run only up to this many products.
EASE_MAX_ITEMS = 12_000


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if name == "sample":
        data = ROOT / "data"
    elif name == "tafeng":
        data = tafeng.dataset(CACHE)
    else:
        data = dataset(name, CACHE)
    frames = validation.Frames(ingest.read_users(data), ingest.read_products(data), ingest.read_transactions(data))
    products, _ = preparation.prepare_products(frames)
    transactions, _ = preparation.prepare_transactions(frames, products)
    return transactions, products


def time_holdout(
    tx: pd.DataFrame, users: pd.Index, items: pd.Index, share: float = 0.2
) -> tuple[ev.Holdout, pd.DataFrame]:
    """The time holdout and the transactions before its cutoff (cut again for validation)."""
    before, after, _ = ev.time_split(tx, share)
    train, test = training.count_matrix(before, users, items), training.count_matrix(after, users, items)
    return ev.make_holdout(train, test), before


def date_holdout(
    tx: pd.DataFrame, users: pd.Index, items: pd.Index, cutoff: pd.Timestamp
) -> tuple[ev.Holdout, pd.DataFrame]:
    """The holdout cut at a date: purchases before it train, the rest test."""
    early = tx["timestamp"] < cutoff
    before, after = tx.loc[early], tx.loc[~early]
    train, test = training.count_matrix(before, users, items), training.count_matrix(after, users, items)
    return ev.make_holdout(train, test), before


# --- peers that RecoMart does not ship: the same Scorer interface as scorers.py ----------------
class Ease:
    """EASE (Steck 2019): a closed-form item-item model; its cost grows with the cube of the catalogue."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def fit(self, counts: sp.csr_matrix) -> Self:
        self._x = (counts > 0).astype(np.float32).tocsr()
        gram = (self._x.T @ self._x).toarray()
        gram[np.diag_indices_from(gram)] += self.lam
        p = np.linalg.inv(gram)
        self._b = (-p / np.diag(p)).astype(np.float32)
        np.fill_diagonal(self._b, 0.0)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._x[rows] @ self._b)


class Als:
    """implicit's alternating least squares on log confidence, BLAS held to one thread (else it is 5x slower)."""

    def __init__(self, factors: int, alpha: float, regularization: float) -> None:
        self.factors, self.alpha, self.regularization = factors, alpha, regularization

    def fit(self, counts: sp.csr_matrix) -> Self:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = weigh(counts, "log")
        confidence.data *= self.alpha
        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=15,
            random_state=0,
            calculate_training_loss=False,
        )
        with threadpool_limits(1, "blas"):
            model.fit(confidence.tocsr(), show_progress=False)
        self._users, self._items = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return self._users[rows] @ self._items.T


class ItemKnn:
    """Item-based neighbours alone: cosine of buyer sets, each item's `neighbours` nearest kept (Sarwar 2001).

    The same neighbours RecoMart blends in (scorers.item_neighbours), here as a model of their own.
    """

    def __init__(self, neighbours: int) -> None:
        self.neighbours = neighbours

    def fit(self, counts: sp.csr_matrix) -> Self:
        self._x = (counts > 0).astype(np.float32).tocsr()
        self._sim = item_neighbours(counts, self.neighbours)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return (self._x[rows] @ self._sim).toarray()


def has_implicit() -> bool:
    try:
        import implicit  # noqa: F401

        return True
    except ImportError:
        return False


def tune(candidates: dict[str, Scorer], holdout: ev.Holdout, list_kind: str) -> tuple[str, Scorer]:
    """The candidate with the best NDCG@10 on the validation holdout (2,000 customers at most)."""
    users = ev.sample_users(holdout.users(list_kind), 2000, 0)
    scored = {
        name: ev.evaluate(scorer.fit(holdout.train), holdout, list_kind, K, users).ndcg
        for name, scorer in candidates.items()
    }
    best = max(scored, key=scored.get)
    return best, candidates[best]


# --- measurement ------------------------------------------------------------------------------
def latency_ms(scorer: Scorer, users: np.ndarray, exclude: sp.csr_matrix | None, n: int = 300) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    picks = rng.choice(users, min(n, users.size), replace=False)
    times = []
    for u in picks:
        start = time.perf_counter()
        ev.top_lists(scorer.score(np.array([u])), K, exclude[[u]] if exclude is not None else None)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def score_all_seconds(scorer: Scorer, n_users: int, exclude: sp.csr_matrix) -> float:
    start = time.perf_counter()
    for i in range(0, n_users, 2048):
        rows = np.arange(i, min(i + 2048, n_users))
        ev.top_lists(scorer.score(rows), K, exclude[rows])
    return time.perf_counter() - start


def holdouts(name: str, tx: pd.DataFrame, users: pd.Index, items: pd.Index) -> tuple[ev.Holdout, ev.Holdout]:
    """Test and validation holdouts: by date for Ta Feng (the issue's months), by the latest 20 % elsewhere."""
    if name == "tafeng":
        holdout, train_tx = date_holdout(tx, users, items, tafeng.TEST_FROM)
        return holdout, date_holdout(train_tx, users, items, tafeng.VALIDATION_FROM)[0]
    holdout, train_tx = time_holdout(tx, users, items)
    return holdout, time_holdout(train_tx, users, items)[0]


def run(name: str) -> list[dict]:
    tx, products = load(name)
    users, items = pd.Index(tx["user_id"].unique()), pd.Index(products["product_id"])
    holdout, validation_holdout = holdouts(name, tx, users, items)
    train = holdout.train
    print(
        f"# {name}: {len(tx):,} transactions, {len(users):,} customers, {len(items):,} products; "
        f"{holdout.users('new').size:,} customers scored on new items, {holdout.users('rebuy').size:,} with re-buys",
        flush=True,
    )

    start = time.perf_counter()
    chosen, _ = training.select_params(validation_holdout, training.TrainingSettings())
    select_s = time.perf_counter() - start
    peers: dict[str, tuple[Scorer | None, Scorer | None]] = {
        f"RecoMart (auto: k={chosen.factors}, shrink={chosen.shrinkage:g}, {chosen.weighting}, "
        f"bought-together {chosen.neighbour_weight:g}, re-buy {chosen.rebuy_weight:g})": (
            ShrunkSvd(chosen),
            ShrunkSvd(chosen, rebuy=True),
        ),
        "best-sellers": (Popularity(), Popularity()),
        "buy again": (None, BuyAgain()),
    }
    for k in (32, 64, 128):
        if k < min(train.shape):
            peers[f"PureSVD binary k={k}, no shrinkage"] = (ShrunkSvd(ModelParams(k, 0.0, "binary")), None)
    peers["PureSVD log k=64, no shrinkage"] = (ShrunkSvd(ModelParams(min(64, min(train.shape) - 1), 0.0, "log")), None)
    knn_name, knn = tune(
        {f"item-kNN {n} neighbours": ItemKnn(n) for n in (20, 100, 400) if n < len(items)}, validation_holdout, "new"
    )
    peers[knn_name + " (tuned)"] = (knn, knn)
    if len(items) <= EASE_MAX_ITEMS:
        ease_name, ease = tune(
            {f"EASE lambda={lam:g}": Ease(lam) for lam in (50, 200, 500, 2000)}, validation_holdout, "new"
        )
        peers[ease_name + " (tuned)"] = (ease, ease)
    else:
        print(f"# EASE not run: {len(items):,} products (its dense inverse allows {EASE_MAX_ITEMS:,})", flush=True)
    if has_implicit():
        grid = {f"implicit ALS k=64 alpha={a:g} reg={r:g}": Als(64, a, r) for a in (10, 100) for r in (1, 100, 1000)}
        als_name, als = tune(grid, validation_holdout, "new")
        peers[als_name + " (tuned)"] = (als, als)
        peers["implicit ALS defaults (k=100, reg=0.01, alpha=1)"] = (Als(100, 1.0, 0.01), None)

    rows = []
    new_users = holdout.users("new")
    for label, (new_scorer, rebuy_scorer) in peers.items():
        row: dict = {"dataset": name, "model": label}
        for list_kind, scorer in (("new", new_scorer), ("rebuy", rebuy_scorer)):
            if scorer is None:
                continue
            start = time.perf_counter()
            scorer.fit(train)
            row["train_s"] = round(time.perf_counter() - start + (select_s if label.startswith("RecoMart") else 0), 2)
            metrics, novelty = ev.evaluate_lists(scorer, holdout, list_kind, K)
            row.update({f"{list_kind}_{m}": round(v, 4) for m, v in asdict(metrics).items() if m != "users"})
            row[f"{list_kind}_novelty"] = round(novelty)
            if list_kind == "new":
                row["score_all_s"] = round(score_all_seconds(scorer, train.shape[0], train), 2)
                row["p50_ms"], row["p95_ms"] = (round(x, 3) for x in latency_ms(scorer, new_users, train))
        rows.append(row)
        print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    cols = [
        ("model", "model"),
        ("new_ndcg", "NDCG@10 new"),
        ("new_precision", "P@10 new"),
        ("new_recall", "R@10 new"),
        ("new_hit_rate", "hit new"),
        ("new_coverage", "coverage new"),
        ("new_novelty", "novelty new"),
        ("rebuy_ndcg", "NDCG@10 re-buys"),
        ("rebuy_precision", "P@10 re-buys"),
        ("rebuy_recall", "R@10 re-buys"),
        ("rebuy_hit_rate", "hit re-buys"),
        ("rebuy_coverage", "coverage re-buys"),
        ("rebuy_novelty", "novelty re-buys"),
        ("train_s", "train (s)"),
        ("score_all_s", "score all (s)"),
        ("p50_ms", "p50 (ms)"),
        ("p95_ms", "p95 (ms)"),
    ]
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
    parser.add_argument("--datasets", nargs="+", default=["sample", "1m"], choices=["sample", "100k", "1m", "tafeng"])
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in run(name)]
    print(table(rows))


if __name__ == "__main__":
    main()
