"""Offline evaluation of top-N lists on a time-based holdout.

Protocol: the transactions are cut at a moment in time; everything before trains, everything after
tests (a seeded random cut when time cannot separate them; see `random_split`). A user is evaluated
when they bought something before the cutoff (so the model knows them) and something relevant after
it. Two lists are scored, as the product shows both:
- "new": items the user had not bought before the cutoff, with bought items excluded from the list;
- "rebuy": every item bought after the cutoff, re-buys included, nothing excluded.
Metrics at k: precision, recall, NDCG (binary relevance), hit rate, and catalog coverage. Any `Scorer`
(scorers.py) can be measured: the model and its baselines go through the same code on the same users.
Training makes the model's lists with `trial_lists.TrialLists` (the lists `ShrunkSvd` gives, made
faster for many settings) and measures them with the same `measure_lists`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dagster_project.model_card import ListKind, Metrics
from dagster_project.ranking import top_k
from dagster_project.scorers import Scorer

BATCH = 256  # customers per block: a block of scores (256 x items) stays in the CPU cache; 1024 was 1.5x slower
ListMaker = Callable[[np.ndarray], np.ndarray]  # a block of users -> their top-k items (-1 pads)


def time_cutoff(timestamps: pd.Series | pd.api.extensions.ExtensionArray, test_share: float = 0.2) -> pd.Timestamp:
    """The timestamp below which (1 - test_share) of the transactions fall."""
    return pd.Series(timestamps, copy=False).quantile(1.0 - test_share)


def time_split(transactions: pd.DataFrame, test_share: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Split at the timestamp below which (1 - test_share) of the transactions fall."""
    cutoff = time_cutoff(transactions["timestamp"], test_share)
    before = transactions["timestamp"] < cutoff
    return transactions.loc[before], transactions.loc[~before], cutoff


def random_test_rows(n_rows: int, test_share: float = 0.2, seed: int = 0) -> np.ndarray:
    """Which of `n_rows` transactions a seeded random cut puts in the test set (see `random_split`)."""
    return np.random.default_rng(seed).random(n_rows) < test_share


def random_split(
    transactions: pd.DataFrame, test_share: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random `test_share` of the transactions as the test set.

    The fallback when time cannot separate past from future (every timestamp equal, a single day of
    data): it measures how well held-out purchases are predicted, not how well the future is.
    """
    test = random_test_rows(len(transactions), test_share, seed)
    return transactions.loc[~test], transactions.loc[test]


@dataclass(frozen=True)
class Holdout:
    """Train matrix, test relevance for both lists, and the users evaluated for each."""

    train: sp.csr_matrix
    relevant_new: sp.csr_matrix
    relevant_all: sp.csr_matrix

    @cached_property
    def popularity_ranks(self) -> np.ndarray:
        """Each item's rank by buyers in `train` (novelty is measured with it; every trial shares it)."""
        return popularity_ranks(self.train)

    def users(self, list_kind: ListKind) -> np.ndarray:
        """Customers who can be measured on the list: known before the cutoff, something relevant after."""
        relevant = self.relevant_new if list_kind == "new" else self.relevant_all
        known = np.diff(self.train.indptr) > 0
        return np.flatnonzero(known & (np.diff(relevant.indptr) > 0))


def make_holdout(train: sp.csr_matrix, test: sp.csr_matrix) -> Holdout:
    test_bin = (test > 0).astype(np.float32).tocsr()
    seen = (train > 0).astype(np.float32)
    new = (test_bin - test_bin.multiply(seen)).tocsr()
    new.eliminate_zeros()
    return Holdout(train.tocsr(), new, test_bin)


def sample_users(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of `users`, a seeded sample beyond that (sorted), so every model meets the same ones."""
    if users.size <= limit:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, limit, replace=False))


def top_lists(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Each row's top-k items as measured: scores taken as float32, `exclude`'s items never listed (-1 pads).

    Ranked by `ranking.top_k`, as the served model ranks (tests compare the two list for list).
    """
    if scores.ndim == 2 and scores.shape[0] > 1 and scores.strides[0] == 0:
        return _shared_top_lists(scores[0], scores.shape[0], k, exclude)
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and exclude.nnz:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    return top_k(scores, k)


def _shared_top_lists(row: np.ndarray, n_rows: int, k: int, exclude: sp.csr_matrix | None) -> np.ndarray:
    """`top_lists` for scores that are one row for everyone (the best-sellers): the row is ranked once.

    Each customer's list is the first k of that ranking they have not bought, so only as many
    candidates as k plus the most any of them bought are ever looked at. Equal scores: lower index first.
    """
    row = np.asarray(row, dtype=np.float32)
    bought = np.diff(exclude.indptr) if exclude is not None else np.zeros(n_rows, dtype=np.int64)
    ranked = np.argsort(-row, kind="stable")
    ranked = ranked[~(np.isnan(row[ranked]) | np.isneginf(row[ranked]))][: k + int(bought.max(initial=0))]
    keep = np.ones((n_rows, ranked.size), dtype=bool)
    if exclude is not None and exclude.nnz:
        keep = ~_hits(np.broadcast_to(ranked, keep.shape), exclude.tocsr())
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept candidates first, in ranking order
    best = np.where(np.take_along_axis(keep, order, axis=1), ranked[order], -1)
    width = min(k, row.size)  # as `top_k`: k, or the whole catalogue when it is smaller
    return np.pad(best, ((0, 0), (0, width - best.shape[1])), constant_values=-1)


def _hits(best: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """hits[i, j]: whether item best[i, j] is relevant for row i (one vectorized membership test)."""
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    truth_keys = rows * n_items + truth.indices
    best_keys = np.arange(best.shape[0], dtype=np.int64)[:, None] * n_items + best
    return np.isin(best_keys, truth_keys) & (best >= 0)


def evaluate(
    scorer: Scorer, holdout: Holdout, list_kind: ListKind = "new", k: int = 10, users: np.ndarray | None = None
) -> Metrics:
    """Precision, recall, NDCG, hit rate at k and catalog coverage for a scorer fit on `holdout.train`."""
    return evaluate_lists(scorer, holdout, list_kind, k, users)[0]


def popularity_ranks(counts: sp.csr_matrix) -> np.ndarray:
    """Each item's rank by buyers (1 = the best-seller; ties in catalogue order)."""
    buyers = np.asarray((counts > 0).sum(axis=0)).ravel()
    ranks = np.empty(buyers.size, dtype=np.float64)
    ranks[np.argsort(-buyers, kind="stable")] = np.arange(1, buyers.size + 1)
    return ranks


def evaluate_lists(
    scorer: Scorer, holdout: Holdout, list_kind: ListKind = "new", k: int = 10, users: np.ndarray | None = None
) -> tuple[Metrics, float]:
    """`evaluate`'s metrics and the lists' novelty: the mean popularity rank of the items listed.

    A higher rank means less obvious products (the best-sellers alone give about k / 2).
    """

    def lists(batch: np.ndarray) -> np.ndarray:
        return top_lists(scorer.score(batch), k, holdout.train[batch] if list_kind == "new" else None)

    return measure_lists(lists, holdout, list_kind, k, users)


def measure_lists(
    lists: ListMaker, holdout: Holdout, list_kind: ListKind = "new", k: int = 10, users: np.ndarray | None = None
) -> tuple[Metrics, float]:
    """Metrics and novelty of the top-k lists that `lists` makes for blocks of `users` (all measurable ones if None).

    `evaluate_lists` makes them from any scorer; the tuner makes them faster for many settings of one
    model (trial_lists.py). Users are taken in blocks of `BATCH`, so nothing of users x items is ever
    held for more than one block; blocks run on a thread pool (BLAS and numpy's partition release the GIL).
    """
    relevant = holdout.relevant_new if list_kind == "new" else holdout.relevant_all
    users = holdout.users(list_kind) if users is None else users
    n_items = holdout.train.shape[1]
    if users.size == 0:
        return Metrics(users=0, precision=0.0, recall=0.0, ndcg=0.0, hit_rate=0.0, coverage=0.0), 0.0
    ranks = holdout.popularity_ranks
    discounts = 1.0 / np.log2(np.arange(2, k + 2))

    def batch_sums(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best = lists(batch)
        truth = relevant[batch]
        hit = _hits(best, truth)
        n_relevant = np.diff(truth.indptr)
        n_hits = hit.sum(axis=1)
        ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
        sums = np.array(
            [
                (n_hits / k).sum(),
                (n_hits / n_relevant).sum(),
                ((hit * discounts[: hit.shape[1]]).sum(axis=1) / ideal).sum(),
                (n_hits > 0).sum(),
                ranks[best[best >= 0]].sum(),
                (best >= 0).sum(),
            ]
        )
        return sums, np.unique(best[best >= 0])

    batches = [users[i : i + BATCH] for i in range(0, users.size, BATCH)]
    with ThreadPoolExecutor(max_workers=min(len(batches), os.cpu_count() or 1)) as pool:
        results = list(pool.map(batch_sums, batches))
    precision, recall, ndcg, hits_any, rank_sum, listed = np.sum([r[0] for r in results], axis=0)
    shown = np.unique(np.concatenate([r[1] for r in results]))
    count = users.size
    return Metrics(
        users=int(count),
        precision=float(precision / count),
        recall=float(recall / count),
        ndcg=float(ndcg / count),
        hit_rate=float(hits_any / count),
        coverage=float(shown.size / n_items),
    ), float(rank_sum / max(listed, 1))
