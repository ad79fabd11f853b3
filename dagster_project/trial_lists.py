"""Top-k lists of many shrunk-SVD settings on one basis, for the same customers: what the tuner measures.

`ShrunkSvd.score` recomputes everything for each setting; the tuner tries dozens of settings on the
same customers, and most of the work does not depend on the setting. Per customer, once:
- the projection of their weighted purchases on the item factors (customers x rank; every rank and
  shrinkage is a column slice and a rescaling of it: scores = (r V_k) diag(f(s)) V_k^T);
- the item-neighbour scores (new-products lists) or their own purchases (lists with re-buys), sparse,
  each row scaled to at most 1;
- the products they bought (excluded from the new-products lists).
Per setting, only a customers-block x items product, a row maximum, a sparse add and a top-k remain.

The lists are the ones `ShrunkSvd` gives: scaling a row by a positive number does not change its
ranking, so scaled(cf) + g scaled(nb) is ranked as cf + g max|cf| scaled(nb), without rescaling the dense
block (tests/test_training_cost.py checks the two agree). Customers come in blocks (evaluation.BATCH):
nothing dense of customers x items is held beyond one block.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dagster_project.evaluation import Holdout, ListMaker
from dagster_project.model_card import ListKind, ModelParams
from dagster_project.ranking import top_k_wide
from dagster_project.scorers import SvdBasis, debias_weights, shrink

DENSE_SHARE = 0.05  # a blend denser than this is kept as a dense block (a customers-block x items array)


def _rows_scaled(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row of a non-negative sparse matrix divided by its largest value (empty rows stay empty)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    top = np.zeros(matrix.shape[0], dtype=np.float32)
    filled = counts > 0
    top[filled] = np.maximum.reduceat(matrix.data, matrix.indptr[:-1][filled])
    matrix.data = (matrix.data / np.repeat(np.where(top > 0, top, 1.0), counts)).astype(np.float32)
    return matrix


class TrialLists:
    """Lists for any setting (rank up to the basis's, shrinkage, blend weights) of one basis on one list kind.

    With `cache`, the per-customer parts of `users` are computed once and every setting reuses them
    (the tuner: a few thousand customers, dozens of settings); without, each block computes its own
    (the holdout: many customers, one setting).
    """

    def __init__(
        self, basis: SvdBasis, holdout: Holdout, list_kind: ListKind, k: int, users: np.ndarray, cache: bool = True
    ) -> None:
        self.basis, self.holdout, self.list_kind, self.k = basis, holdout, list_kind, k
        self.users = np.sort(users)
        self._item_rows = np.ascontiguousarray(basis.item_factors.T)  # rank x items
        self._cached = self._parts(self.users) if cache else None

    def _parts(self, rows: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix | np.ndarray | None, sp.csr_matrix | None]:
        """Projection (rows x rank), the sparse blend part (rows scaled to 1), the purchases to exclude."""
        projection = np.asarray(self.basis.weighted[rows] @ self.basis.item_factors, dtype=np.float32)
        if self.list_kind == "rebuy":
            own = self.basis.counts[rows].astype(np.float32)
            own.data = np.log1p(own.data)
            return projection, _rows_scaled(own), None
        blend = None
        if self.basis.neighbours is not None:
            product = (self.basis.counts[rows] > 0).astype(np.float32) @ self.basis.neighbours
            if product.nnz > DENSE_SHARE * product.shape[0] * product.shape[1]:  # adding it dense is faster
                blend = product.toarray()
                top = blend.max(axis=1, keepdims=True)
                blend /= np.where(top > 0, top, 1.0)
            else:
                blend = _rows_scaled(product)
        return projection, blend, self.holdout.train[rows]

    def lists(self, params: ModelParams) -> ListMaker:
        """The top-k lists `ShrunkSvd(params, rebuy=list_kind == "rebuy")` gives a block of `users`."""
        if params.weighting != self.basis.weighting:
            raise ValueError(f"a {self.basis.weighting} basis cannot fit a {params.weighting} model")
        rank = min(params.factors, self._item_rows.shape[0])
        weights = shrink(self.basis.singular_values[:rank], params.shrinkage)
        targets = self._item_rows[:rank]
        if params.popularity_exponent:
            targets = targets * debias_weights(self.basis.popularity, params.popularity_exponent)
        rebuy = self.list_kind == "rebuy"
        blend_weight = params.rebuy_weight if rebuy else params.neighbour_weight
        if not rebuy and blend_weight > 0 and self.basis.neighbours is None:
            raise ValueError("a blend with item neighbours needs a basis fitted with them")

        def make(rows: np.ndarray) -> np.ndarray:
            if self._cached is None:
                projection, blend, exclude = self._parts(rows)
            else:
                at = np.minimum(np.searchsorted(self.users, rows), self.users.size - 1)
                if not np.array_equal(self.users[at], rows):
                    raise ValueError("lists were prepared for other customers")
                if at.size and at[-1] - at[0] == at.size - 1:  # a run of prepared customers (a block): views
                    at = slice(at[0], at[-1] + 1)
                projection, blend, exclude = (part if part is None else part[at] for part in self._cached)
            scores = (projection[:, :rank] * weights) @ targets
            if blend is not None and blend_weight > 0:
                # scaled(cf) + w scaled(blend) ranks as cf + w max|cf| scaled(blend); a row of zeros stays unscaled
                largest = np.maximum(scores.max(axis=1), -scores.min(axis=1))
                factor = blend_weight * np.where(largest > 0, largest, 1.0).astype(np.float32)
                if isinstance(blend, np.ndarray):
                    scores += factor[:, None] * blend
                else:
                    at_row = np.repeat(np.arange(blend.shape[0]), np.diff(blend.indptr))
                    scores[at_row, blend.indices] += factor[at_row] * blend.data
            if exclude is not None and exclude.nnz:
                scores[np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr)), exclude.indices] = -np.inf
            return top_k_wide(scores, self.k)

        return make
