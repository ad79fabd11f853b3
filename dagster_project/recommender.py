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

from dagster_project import model_file
from dagster_project.contract import id_key, product_key
from dagster_project.model_card import ModelCard, ModelParams
from dagster_project.ranking import top_k
from dagster_project.scorers import blend_rebuy, weigh

# 5: tables stored as plain arrays; 4: the card is a typed ModelCard document (the model's params live
# in it); 3: untyped card; 2 and earlier held a pickle. Files of another version are refused with a
# request to retrain.
FORMAT_VERSION = 5
ITEM_COLUMNS = ["product_id", "name", "category", "brand", "price"]


class ModelError(RuntimeError):
    """A model file that is missing, corrupt or from an incompatible version."""


@dataclass
class RecommenderModel:
    """Everything needed to serve: factors, purchase history, catalog, and the card (with the params)."""

    user_ids: pd.Index
    user_profiles: pd.DataFrame  # indexed by user_id, every known user (buyers or not): name, age, ...
    items: pd.DataFrame  # ITEM_COLUMNS, row i is item i
    counts: sp.csr_matrix  # users x items purchase counts
    item_factors: np.ndarray
    factor_weights: np.ndarray
    popularity: np.ndarray
    card: ModelCard
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self._item_index = pd.Index(self.items["product_id"])
        self._by_popularity = np.argsort(-self.popularity.astype(np.float64), kind="stable")  # ties: catalogue order
        self._weighted = weigh(self.counts, self.params.weighting)
        norms = self.item_factors * np.sqrt(self.factor_weights)
        lengths = np.linalg.norm(norms, axis=1, keepdims=True)
        self._item_embeddings = norms / np.where(lengths > 0, lengths, 1.0)
        self._item_columns = {c: self.items[c].to_numpy() for c in ITEM_COLUMNS}
        self._projection = np.ascontiguousarray((self.item_factors * self.factor_weights).T)  # k x items

    @property
    def params(self) -> ModelParams:
        return self.card.params

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def user_index(self, user_id: object) -> int | None:
        """Row of a user in the purchase matrix, or None for users without purchases."""
        loc = self.user_ids.get_indexer([id_key(user_id)])[0]
        return None if loc < 0 else int(loc)

    def knows_user(self, user_id: object) -> bool:
        return id_key(user_id) in self.user_profiles.index or self.user_index(user_id) is not None

    def profile(self, user_id: object) -> dict[str, Any]:
        """What the shop knows of a user (empty for an unknown id)."""
        key = id_key(user_id)
        if key not in self.user_profiles.index:
            return {}
        row = self.user_profiles.loc[key]
        return {"user_id": key, **{k: (None if pd.isna(v) else v) for k, v in row.items()}}

    def find_users(self, text: str, limit: int = 50) -> pd.DataFrame:
        """Users whose id equals, or whose name contains, `text` (case-insensitive)."""
        text = str(text).strip()
        if not text:
            return self.user_profiles.iloc[:0].reset_index()
        profiles = self.user_profiles
        exact = profiles.index == id_key(text)
        by_name = (
            profiles["name"].astype("string").str.contains(text, case=False, regex=False).fillna(False)
            if "name" in profiles
            else exact
        )
        found = profiles[exact | by_name.to_numpy()]
        exact_first = found.index == id_key(text)
        return pd.concat([found[exact_first], found[~exact_first]]).head(limit).reset_index()

    def _frame(self, items: np.ndarray, scores: np.ndarray, reason: str | list[str]) -> pd.DataFrame:
        columns = {"rank": np.arange(1, len(items) + 1)}
        columns.update({c: values[items] for c, values in self._item_columns.items()})
        columns["score"] = np.round(scores.astype(float), 6)
        columns["reason"] = reason if isinstance(reason, list) else [reason] * len(items)
        return pd.DataFrame(columns)

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
        return self._frame(best, self.popularity[best].astype(np.float64), "popular")

    def recommend(self, user_id: object, n: int = 10, exclude_purchased: bool = True) -> pd.DataFrame:
        """Top-n products for a user, best first; best-sellers for an unknown or cold user."""
        row = self.user_index(user_id)
        if row is None:
            return self.popular(n)
        bought, counts = self._purchases(row)
        weights = self._weighted.data[self._weighted.indptr[row] : self._weighted.indptr[row + 1]]
        scores = ((weights @ self.item_factors[bought]) @ self._projection).astype(np.float64)
        if exclude_purchased:
            scores[bought] = -np.inf
            reasons: list[str] | str = "similar customers"
        else:
            own = np.zeros((1, self.n_items))
            own[0, bought] = counts
            scores = blend_rebuy(scores[None, :], own, self.params.rebuy_weight)[0]
        best = top_k(scores, n)
        best = best[best >= 0]
        if not exclude_purchased:
            reasons = np.where(np.isin(best, bought), "buy again", "similar customers").tolist()
        return self._frame(best, scores[best], reasons)

    def buy_again(self, user_id: object, n: int = 10) -> pd.DataFrame:
        """The user's own most-bought products, most purchases first."""
        row = self.user_index(user_id)
        if row is None:
            return self._frame(np.empty(0, dtype=int), np.empty(0), "buy again")
        bought, counts = self._purchases(row)
        order = np.lexsort((-self.popularity[bought], -counts))[:n]
        return self._frame(bought[order], counts[order].astype(float), "buy again")

    def similar_items(self, product_id: object, n: int = 10) -> pd.DataFrame:
        """Products whose buyers overlap most with this one's (cosine of item factors)."""
        found = self._item_index.get_indexer([id_key(product_id), product_key(product_id)])
        loc = found[0] if found[0] >= 0 else found[1]
        if loc < 0:
            raise KeyError(f"Unknown product_id {product_id!r}")
        scores = (self._item_embeddings @ self._item_embeddings[loc]).astype(np.float64)
        scores[loc] = -np.inf
        best = top_k(scores, n)
        best = best[best >= 0]
        return self._frame(best, scores[best], "bought together")

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
    return model_file.write_bundle(
        Path(path),
        model_file.Bundle(
            document={"card": model.card.to_document(), "counts_shape": list(counts.shape)},
            arrays={
                "counts_indptr": counts.indptr,
                "counts_indices": counts.indices,
                "counts_data": counts.data,
                "item_factors": model.item_factors,
                "factor_weights": model.factor_weights,
                "popularity": model.popularity,
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
    factors, weights, popularity = arrays["item_factors"], arrays["factor_weights"], arrays["popularity"]
    if (
        list(items.columns) != ITEM_COLUMNS
        or len(items) != n_items
        or len(user_ids) != n_users
        or factors.ndim != 2
        or factors.shape[0] != n_items
        or weights.shape != (factors.shape[1],)
        or popularity.shape != (n_items,)
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
        card=card,
    )
