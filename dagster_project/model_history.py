"""Model history: every kept model version with its card, and how much the served lists differ from another's.

`kept_cards` reads the versions `model_store` keeps (a version that no longer loads is listed with
its problem, never dropped silently). `list_change` answers "would customers notice a roll-back?":
for a seeded sample of customers both models know, how many customers' top-10 new products differ
and how much the two lists overlap on average. Both models score the sample in one matrix product each.

Imports no Dagster: the app reads the history from the models folder even when Dagster is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dagster_project import model_store
from dagster_project.model_card import ModelCard
from dagster_project.ranking import top_k_wide
from dagster_project.recommender import ModelError, RecommenderModel, load_model
from dagster_project.settings import MODEL_FILENAME

TOP = 10


@dataclass(frozen=True)
class KeptVersion:
    """One kept model file: its card, or why it cannot be read; `served` when it is the model in use."""

    name: str
    path: Path
    card: ModelCard | None
    problem: str | None
    served: bool


@dataclass(frozen=True)
class ListChange:
    """How the served model's top-10 new products differ from another model's, on customers both know.

    `missing_customers` / `missing_products`: customers with purchases and products the served model
    knows and the other does not (a roll-back would give those customers best-sellers, and those
    products would disappear from every list).
    """

    customers_compared: int
    changed: int  # customers whose top-10 (as a set) differs
    mean_overlap: float  # mean share of the served top-10 also in the other's, 0..1
    missing_customers: int
    missing_products: int
    k: int = TOP

    @property
    def changed_share(self) -> float:
        return self.changed / self.customers_compared if self.customers_compared else 0.0


def _served_version(models_dir: Path) -> str | None:
    try:
        return load_model(Path(models_dir) / MODEL_FILENAME).card.version
    except ModelError:
        return None


def kept_cards(models_dir: Path) -> list[KeptVersion]:
    """Every kept version, newest first, with its card (or the problem that stops it loading)."""
    served = _served_version(models_dir)
    kept = []
    for path in model_store.list_versions(models_dir):
        name = model_store.version_name(path)
        try:
            card, problem = load_model(path).card, None
        except ModelError as exc:
            card, problem = None, str(exc)
        kept.append(KeptVersion(name, path, card, problem, served is not None and name == served))
    return kept


def _top_ids(model: RecommenderModel, rows: np.ndarray, k: int) -> np.ndarray:
    """Top-k new products (ids, '' where the list is shorter) for users at `rows`, in one batch."""
    scores = model.score_users(rows)
    bought = model.counts[rows]
    owner = np.repeat(np.arange(len(rows)), np.diff(bought.indptr))
    scores[owner, bought.indices] = -np.inf
    best = top_k_wide(scores, k)
    ids = model.items["product_id"].astype(str).to_numpy()
    return np.where(best >= 0, ids[np.maximum(best, 0)], "")


def list_change(
    served: RecommenderModel, previous: RecommenderModel, sample: int = 2000, seed: int = 0, k: int = TOP
) -> ListChange:
    """Compare the two models' top-k new products on up to `sample` customers (seeded) who bought in both."""
    both = served.user_ids.intersection(previous.user_ids)
    chosen = both
    if len(both) > sample:
        chosen = both[np.sort(np.random.default_rng(seed).choice(len(both), sample, replace=False))]
    overlap = np.zeros(len(chosen))
    changed = 0
    block = 1024
    for start in range(0, len(chosen), block):
        users = chosen[start : start + block]
        mine = _top_ids(served, served.user_ids.get_indexer(users), k)
        theirs = _top_ids(previous, previous.user_ids.get_indexer(users), k)
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            a_set, b_set = set(a[a != ""]), set(b[b != ""])
            overlap[start + i] = len(a_set & b_set) / max(len(a_set), 1)
            changed += a_set != b_set
    return ListChange(
        customers_compared=len(chosen),
        changed=int(changed),
        mean_overlap=float(overlap.mean()) if len(chosen) else 1.0,
        missing_customers=int(len(served.user_ids.difference(previous.user_ids))),
        missing_products=int((~served.items["product_id"].isin(previous.items["product_id"])).sum()),
    )
