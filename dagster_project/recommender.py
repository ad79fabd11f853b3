"""The trained recommender: a shrunk PureSVD item model, and how to load and query it.

Scores for a user with purchase row r are  r . V . diag(s^2 / (s^2 + lambda)) . V^T,  where V and s are
the item factors and singular values of the user x item matrix (see scorers.py: the same model,
scored in batches, is what evaluation measures). For lists with re-buys, the user's own purchase
counts are blended in with a weight chosen on validation data. Unknown or cold users get the
best-sellers.

Imports no Dagster: the app and the tests load a model with `load_model(path)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dagster_project import explanations, model_file
from dagster_project.contract import id_key, product_key
from dagster_project.customer_directory import CustomerDirectory, customer_order
from dagster_project.model_card import ModelCard, ModelParams
from dagster_project.ranking import top_k
from dagster_project.scorers import blend_neighbours, blend_neighbours_into, blend_rebuy, debias_weights, weigh

# 7: the params carry the blend with item neighbours (kept in the file) and a popularity exponent, and the
# card the accuracy-variety curve; 6: customer profiles carry e-mail, purchases, spend and last purchase (a
# time column); 5: tables stored as plain arrays; 4: the card is a typed ModelCard document (the model's
# params live in it); 3: untyped card; 2 and earlier held a pickle. Files of another version are refused
# with a request to retrain.
FORMAT_VERSION = 7
ITEM_COLUMNS = ["product_id", "name", "category", "brand", "price"]
# A recommendation list's columns, in order (the app and the customer lists read them by name).
LIST_COLUMNS = ["rank", *ITEM_COLUMNS, "score", "reason", "because", "explanation"]


class ModelError(RuntimeError):
    """A model file that is missing, corrupt or from an incompatible version."""


@dataclass
class RecommenderModel:
    """Everything needed to serve: factors, purchase history, catalog, and the card (with the params)."""

    user_ids: pd.Index
    # indexed by user_id, every known user (buyers or not): name, email, age, ..., purchases, spend, last_purchase
    user_profiles: pd.DataFrame
    items: pd.DataFrame  # ITEM_COLUMNS, row i is item i
    counts: sp.csr_matrix  # users x items purchase counts
    item_factors: np.ndarray
    factor_weights: np.ndarray
    popularity: np.ndarray
    neighbours: sp.csr_matrix  # items x items (scorers.item_neighbours); empty when the blend is off
    card: ModelCard
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self._item_index = pd.Index(self.items["product_id"])
        self._by_popularity = np.argsort(-self.popularity.astype(np.float64), kind="stable")  # ties: catalogue order
        self._weighted: sp.csr_matrix | None = None  # made on first use: an update only saves the model
        norms = self.item_factors * np.sqrt(self.factor_weights)
        lengths = np.linalg.norm(norms, axis=1, keepdims=True)
        self._item_embeddings = norms / np.where(lengths > 0, lengths, 1.0)
        self._item_columns = {c: self.items[c].to_numpy() for c in ITEM_COLUMNS}
        debias = debias_weights(self.popularity, self.params.popularity_exponent)
        self._projection = np.ascontiguousarray((self.item_factors * self.factor_weights).T * debias)  # k x items
        self._customers: CustomerDirectory | None = None
        self._item_targets: np.ndarray | None = None

    @property
    def params(self) -> ModelParams:
        return self.card.params

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def weighted(self) -> sp.csr_matrix:
        """The purchase counts as the model weighs them (binary or log), users x items."""
        if self._weighted is None:
            self._weighted = weigh(self.counts, self.params.weighting)
        return self._weighted

    @property
    def projection(self) -> np.ndarray:
        """(V D)^T, k x items: a weighted purchase row times V, times this, gives the scores."""
        return self._projection

    @property
    def item_targets(self) -> np.ndarray:
        """`projection` transposed, items x k, one contiguous row per item (gathering candidates' rows is fast)."""
        if self._item_targets is None:
            self._item_targets = np.ascontiguousarray(self._projection.T)
        return self._item_targets

    def score_users(self, rows: np.ndarray) -> np.ndarray:
        """Scores of many users at once (len(rows) x items, float32), nothing excluded."""
        scores, largest = self.factor_scores(rows)
        return self.blend_neighbours_into(scores, largest, rows)

    def factor_scores(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The factor model's scores of many users (len(rows) x items, float32) and each row's largest absolute
        score (explanations are measured on it, and the blend with neighbours scales by it)."""
        scores = np.asarray(self.weighted[rows] @ self.item_factors) @ self._projection
        if not scores.size:
            return scores, np.zeros(len(rows), dtype=np.float32)
        return scores, np.maximum(scores.max(axis=1), -scores.min(axis=1))  # |scores|.max without a copy

    def blend_neighbours_into(self, scores: np.ndarray, largest: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`factor_scores` turned into the served scores in place: blended with the item neighbours when the
        model has them (scorers.blend_neighbours_into), unchanged otherwise. Items set to -inf stay -inf."""
        weight = self.params.neighbour_weight
        if weight == 0:
            return scores
        return blend_neighbours_into(scores, largest, self.counts[rows] > 0, self.neighbours, weight)

    def _neighbour_row(self, bought: np.ndarray) -> np.ndarray:
        """One customer's item-neighbour scores: the sum of the neighbour rows of the items bought."""
        nb = self.neighbours
        starts, ends = nb.indptr[bought], nb.indptr[bought + 1]
        picks = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if bought.size else np.empty(0, int)
        return np.bincount(nb.indices[picks], weights=nb.data[picks], minlength=self.n_items)

    def _key(self, user_id: object) -> str:
        """The stored form of an id; one already in stored form skips normalizing (a hash look-up, not ~0.3 ms)."""
        if isinstance(user_id, str) and (user_id in self.user_ids or user_id in self.user_profiles.index):
            return user_id
        return id_key(user_id)

    def user_index(self, user_id: object) -> int | None:
        """Row of a user in the purchase matrix, or None for users without purchases."""
        try:
            loc = self.user_ids.get_loc(self._key(user_id))
        except KeyError:
            return None
        return int(loc) if isinstance(loc, int | np.integer) else None

    def knows_user(self, user_id: object) -> bool:
        return self._key(user_id) in self.user_profiles.index or self.user_index(user_id) is not None

    def profile(self, user_id: object) -> dict[str, Any]:
        """What the shop knows of a user (empty for an unknown id)."""
        key = self._key(user_id)
        if key not in self.user_profiles.index:
            return {}
        row = self.user_profiles.loc[key]
        return {"user_id": key, **{k: (None if pd.isna(v) else v) for k, v in row.items()}}

    def customers(self) -> pd.DataFrame:
        """Every known customer with purchases, spend and last purchase; buyers first, most purchases first.

        Columns: customer_directory.CUSTOMER_COLUMNS (email and segment only when the export had them).
        """
        return self._directory().frame.copy()

    def customer_order(self) -> np.ndarray:
        """Positions in `user_profiles` of the customers in `customers()` order."""
        return customer_order(self.user_profiles)

    def _directory(self) -> CustomerDirectory:
        if self._customers is None:
            self._customers = CustomerDirectory.from_profiles(self.user_profiles)
        return self._customers

    def search_users(self, text: str, limit: int = 50) -> tuple[pd.DataFrame, int]:
        """Customers whose id equals, or whose name or e-mail contains, `text` (case-insensitive).

        The exact id first, then in customer-list order; at most `limit` rows, and how many matched in all.
        """
        text = str(text).strip()
        if not text:
            return self._directory().frame.iloc[:0].copy(), 0
        return self._directory().search(text, id_key(text), limit)

    def find_users(self, text: str, limit: int = 50) -> pd.DataFrame:
        """The first `limit` customers `search_users` finds."""
        return self.search_users(text, limit)[0]

    def _frame(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        reason: str | list[str],
        because: list[list[str]] | None = None,
        explanation: str | list[str] = "",
    ) -> pd.DataFrame:
        columns = {"rank": np.arange(1, len(items) + 1)}
        columns.update({c: values[items] for c, values in self._item_columns.items()})
        columns["score"] = np.round(scores.astype(float), 6) + 0.0  # + 0.0: no "-0.0"
        columns["reason"] = reason if isinstance(reason, list) else [reason] * len(items)
        columns["because"] = because if because is not None else [[] for _ in range(len(items))]
        columns["explanation"] = explanation if isinstance(explanation, list) else [explanation] * len(items)
        return pd.DataFrame(columns)

    def _explain(
        self, weights: np.ndarray, bought: np.ndarray, candidates: np.ndarray, scale: float
    ) -> tuple[list[list[str]], list[str]]:
        """The bought products that pull each candidate up most (ids), and the sentence naming them."""
        contrib = explanations.contributions(weights, self.item_factors[bought], self._projection, candidates)
        ids, names = self._item_columns["product_id"], self._item_columns["name"]
        because, texts = [], []
        for top in explanations.top_contributors(contrib, bought, scale):
            because.append([str(i) for i in ids[top]])
            texts.append(explanations.because_text(names[top]))
        return because, texts

    def _purchases(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A user's bought items and their counts, straight from the CSR arrays (no slicing overhead)."""
        start, end = self.counts.indptr[row], self.counts.indptr[row + 1]
        return self.counts.indices[start:end], self.counts.data[start:end]

    def popular(self, n: int = 10, exclude: np.ndarray | None = None) -> pd.DataFrame:
        """The best-sellers (most buyers first), without the `exclude` items."""
        order = self._by_popularity
        if exclude is not None and exclude.size:
            order = order[~np.isin(order, exclude)]
        best = order[:n]
        return self._frame(
            best, self.popularity[best].astype(np.float64), "popular", explanation=explanations.POPULAR_TEXT
        )

    def recommend(self, user_id: object, n: int = 10, exclude_purchased: bool = True) -> pd.DataFrame:
        """Top-n products for a user, best first, each with why; best-sellers for an unknown or cold user.

        `because` lists up to 3 of the user's own products that contribute most to a product's score
        (empty for best-sellers and re-buys); `explanation` says it in words.
        """
        row = self.user_index(user_id)
        if row is None:
            return self.popular(n)
        bought, counts = self._purchases(row)
        weighted = self.weighted
        weights = weighted.data[weighted.indptr[row] : weighted.indptr[row + 1]]
        scores = ((weights @ self.item_factors[bought]) @ self._projection).astype(np.float64)
        scale = float(max(scores.max(), -scores.min())) if scores.size else 0.0
        if self.params.neighbour_weight > 0 and exclude_purchased:  # variety is for the new-product lists
            neighbour_scores = self._neighbour_row(bought)[None, :]
            scores = blend_neighbours(scores[None, :], neighbour_scores, self.params.neighbour_weight)[0]
        if exclude_purchased:
            scores[bought] = -np.inf
            reasons: list[str] | str = "similar customers"
        else:
            own = np.zeros((1, self.n_items))
            own[0, bought] = counts
            scores = blend_rebuy(scores[None, :], own, self.params.rebuy_weight)[0]
        best = top_k(scores, n)
        best = best[best >= 0]
        because, texts = self._explain(weights, bought, best, scale)
        if not exclude_purchased:
            own = np.isin(best, bought)
            reasons = np.where(own, "buy again", "similar customers").tolist()
            times = dict(zip(bought.tolist(), counts.tolist()))
            for position in np.flatnonzero(own):
                because[position] = []
                texts[position] = explanations.rebuy_text(times[int(best[position])])
        return self._frame(best, scores[best], reasons, because, texts)

    def buy_again(self, user_id: object, n: int = 10) -> pd.DataFrame:
        """The user's own most-bought products, most purchases first."""
        row = self.user_index(user_id)
        if row is None:
            return self._frame(np.empty(0, dtype=int), np.empty(0), "buy again")
        bought, counts = self._purchases(row)
        order = np.lexsort((-self.popularity[bought], -counts))[:n]
        texts = [explanations.rebuy_text(c) for c in counts[order]]
        return self._frame(bought[order], counts[order].astype(float), "buy again", explanation=texts)

    def similar_items(self, product_id: object, n: int = 10) -> pd.DataFrame:
        """Products whose buyers overlap most with this one's (cosine of item factors)."""
        if isinstance(product_id, str) and product_id in self._item_index:  # already in stored form
            loc = int(self._item_index.get_loc(product_id))
        else:
            found = self._item_index.get_indexer([id_key(product_id), product_key(product_id)])
            loc = found[0] if found[0] >= 0 else found[1]
        if loc < 0:
            raise KeyError(f"Unknown product_id {product_id!r}")
        scores = (self._item_embeddings @ self._item_embeddings[loc]).astype(np.float64)
        scores[loc] = -np.inf
        best = top_k(scores, n)
        best = best[best >= 0]
        name = self._item_columns["name"][loc]
        return self._frame(best, scores[best], "bought together", explanation=f"bought by customers who bought {name}")

    def purchase_history(self, user_id: object) -> pd.DataFrame:
        row = self.user_index(user_id)
        if row is None:
            return pd.DataFrame(columns=[*ITEM_COLUMNS, "purchases"])
        bought, counts = self._purchases(row)
        out = self.items.iloc[bought][ITEM_COLUMNS].reset_index(drop=True)
        out["purchases"] = counts.astype(int)
        return out.sort_values("purchases", ascending=False, kind="stable").reset_index(drop=True)


def save_model(model: RecommenderModel, path: Path) -> Path:
    """Write the model atomically as a data-only file (see model_file: loading it never runs code)."""
    counts = model.counts.tocsr()
    neighbours = model.neighbours.tocsr()
    return model_file.write_bundle(
        Path(path),
        model_file.Bundle(
            document={
                "card": model.card.to_document(),
                "counts_shape": list(counts.shape),
                "neighbours_shape": list(neighbours.shape),
            },
            arrays={
                "counts_indptr": counts.indptr,
                "counts_indices": counts.indices,
                "counts_data": counts.data,
                "item_factors": model.item_factors,
                "factor_weights": model.factor_weights,
                "popularity": model.popularity,
                "neighbours_indptr": neighbours.indptr,
                "neighbours_indices": neighbours.indices,
                "neighbours_data": neighbours.data,
            },
            tables={
                "user_ids": pd.DataFrame({"user_id": pd.Series(model.user_ids, dtype="string")}),
                "user_profiles": model.user_profiles.rename_axis("user_id").reset_index(),
                "items": model.items[ITEM_COLUMNS],
            },
        ),
        FORMAT_VERSION,
    )


def load_model(path: str | Path) -> RecommenderModel:
    """Load a model file; a clear `ModelError` when it is missing, damaged, foreign or from another version.

    Nothing from the file is executed, whatever its bytes: it holds only JSON, arrays and tables.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"No model at {path}: run the complete pipeline to train one.")
    try:
        bundle = model_file.read_bundle(path, FORMAT_VERSION)
        model = _from_bundle(bundle)
    except model_file.ModelFileError as exc:
        raise ModelError(f"Model file {path} cannot be used: {exc}. Retrain with the complete pipeline.") from None
    except Exception:  # any other error from a file's parts (a crafted one included): refused, never a crash
        raise ModelError(
            f"Model file {path} cannot be used: its parts do not fit together. Retrain with the complete pipeline."
        ) from None
    return model


def _from_bundle(bundle: model_file.Bundle) -> RecommenderModel:
    """Rebuild the model from a file's parts, checking that their shapes agree before anything is served."""
    doc, arrays, tables = bundle.document, bundle.arrays, bundle.tables
    card = ModelCard.from_document(doc["card"])
    items = tables["items"]
    user_ids = pd.Index(tables["user_ids"]["user_id"].astype("string"))
    n_users, n_items = (int(x) for x in doc["counts_shape"])
    counts = sp.csr_matrix(
        (arrays["counts_data"], arrays["counts_indices"], arrays["counts_indptr"]), shape=(n_users, n_items)
    )
    counts.check_format(full_check=True)
    neighbours = sp.csr_matrix(
        (arrays["neighbours_data"], arrays["neighbours_indices"], arrays["neighbours_indptr"]),
        shape=tuple(int(x) for x in doc["neighbours_shape"]),
    )
    neighbours.check_format(full_check=True)
    factors, weights, popularity = arrays["item_factors"], arrays["factor_weights"], arrays["popularity"]
    if (
        list(items.columns) != ITEM_COLUMNS
        or len(items) != n_items
        or len(user_ids) != n_users
        or factors.ndim != 2
        or factors.shape[0] != n_items
        or weights.shape != (factors.shape[1],)
        or popularity.shape != (n_items,)
        or neighbours.shape != (n_items, n_items)
    ):
        raise ValueError("shapes disagree")
    profiles = tables["user_profiles"]
    profiles = profiles.set_index(profiles["user_id"].astype("string")).drop(columns="user_id")
    return RecommenderModel(
        user_ids=user_ids,
        user_profiles=profiles,
        items=items,
        counts=counts,
        item_factors=factors,
        factor_weights=weights,
        popularity=popularity,
        neighbours=neighbours,
        card=card,
    )
