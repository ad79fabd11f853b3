"""Scorers: recommenders behind one interface, fit on a purchase matrix, then score users' rows.

Evaluation, the tuner in training and the model-quality benchmark all take a `Scorer`, so RecoMart's
model and its baselines are measured by the same code on the same customers. The served model
(`recommender.RecommenderModel`) holds the fitted factors and scores one user at a time on its own
fast path; `ShrunkSvd` is the same arithmetic for many users at once.

Shrunk PureSVD scores a user with purchase row r as  r . V . diag(s^2 / (s^2 + lambda)) . V^T  (V, s: item
factors and singular values of the weighted user x item matrix). Shrinking the singular values keeps
the biggest (popularity) directions from drowning the taste directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
import scipy.sparse as sp

from dagster_project.model_card import ModelParams

NEIGHBOURS = 100  # neighbours kept per item for the blend with item-item neighbours
POWER_ITERATIONS = 2  # power iterations of the randomized SVD of X^T X (fit_factors): (X^T X)^5
PRODUCT_BLOCK_ROWS = 1 << 14  # customers per block when applying X^T X to the SVD's item blocks (cache-sized)
NEIGHBOUR_SLABS = 32  # item_neighbours makes X^T X in this many slabs of items


class Scorer(Protocol):
    """A recommender as evaluation sees it.

    `fit` learns from a users x items purchase-count matrix and returns the scorer; `score` then gives
    dense scores (len(rows) x items, higher is better) for rows of that same matrix.
    """

    def fit(self, counts: sp.csr_matrix) -> Self: ...

    def score(self, rows: np.ndarray) -> np.ndarray: ...


def weigh(counts: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Confidence from purchase counts: 1 per item bought, or log1p(count)."""
    weighted = counts.astype(np.float32).tocsr(copy=True)
    weighted.data = np.ones_like(weighted.data) if weighting == "binary" else np.log1p(weighted.data)
    return weighted


class _ItemGram:
    """X^T X as an operator on items x r blocks, applied as X^T (X Q) over blocks of customers.

    The SVD only multiplies X^T X by thin blocks, so X^T X is never formed: each product costs two passes
    over X's non-zeros (at 10M transactions a fifth of X^T X's) and holds one customers-block x r array.
    """

    def __init__(self, x: sp.csr_matrix) -> None:
        from scipy.sparse.linalg import LinearOperator

        step = max(1, PRODUCT_BLOCK_ROWS)
        blocks = [x[start : start + step] for start in range(0, x.shape[0], step)]
        n = x.shape[1]

        def apply(q: np.ndarray) -> np.ndarray:
            q = np.ascontiguousarray(q, dtype=np.float32)
            out = np.zeros((n, q.shape[1]), dtype=np.float32)
            for block in blocks:
                out += block.T @ (block @ q)
            return out

        def vector(v: np.ndarray) -> np.ndarray:
            return apply(v.reshape(-1, 1)).ravel()

        # symmetric: the transpose applies the same way (scikit-learn takes it for one-column blocks)
        self.operator = LinearOperator(
            (n, n), matvec=vector, rmatvec=vector, matmat=apply, rmatmat=apply, dtype=np.float32
        )


def fit_factors(
    matrix: sp.csr_matrix, factors: int, seed: int = 0, power_iterations: int = POWER_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Item factors V (items x k) and singular values s of a sparse matrix X, with scikit-learn.

    X^T X = V diag(s^2) V^T, so scikit-learn's randomized SVD (Halko et al. 2011) of the item Gram matrix
    gives V and s^2. X^T X is applied, never formed (`_ItemGram`): nothing grows with the customers
    beyond X itself and one block of them, and the SVD works on items x (k + 10) blocks only. The
    routine is scikit-learn's own randomized SVD (the pinned release's body behind `randomized_svd`,
    whose input check only takes arrays). `power_iterations` q reaches the accuracy of (X^T X)^(2q + 1)
    times a random block: q = 2 is five passes of subspace iteration on X, each block re-orthonormalized
    (QR): unnormalized, (X^T X)^5 spans a range float32 cannot hold, and the trailing factors were noise.
    """
    from sklearn.utils.extmath import _randomized_svd

    x = matrix.astype(np.float32, copy=False).tocsr()
    k = max(1, min(factors, min(x.shape) - 1))
    oversamples = max(0, min(10, x.shape[1] - k))
    v, s2, _ = _randomized_svd(
        _ItemGram(x).operator,
        k,
        n_oversamples=oversamples,
        n_iter=power_iterations,
        transpose=False,
        power_iteration_normalizer="QR",
        random_state=seed,
        flip_sign=False,
    )
    order = np.argsort(s2)[::-1]
    s2 = s2[order].astype(np.float64)
    s2[s2 <= s2[0] * np.finfo(np.float32).eps * 4] = 0.0  # below float32 resolution of X^T X: not a direction
    return v[:, order].astype(np.float32), np.sqrt(s2).astype(np.float32)


def shrink(s: np.ndarray, shrinkage: float) -> np.ndarray:
    """Weights s^2 / (s^2 + lambda), lambda = shrinkage x the mean s^2 (so one scale fits every shop)."""
    s2 = s.astype(np.float64) ** 2
    lam = shrinkage * s2.mean() if s2.size else 0.0
    return (s2 / (s2 + lam)).astype(np.float32)


def scaled_rows(x: np.ndarray) -> np.ndarray:
    """Each row divided by its largest absolute value (rows of zeros stay zero)."""
    top = np.abs(x).max(axis=1, keepdims=True)
    return x / np.where(top > 0, top, 1.0)


def item_neighbours(counts: sp.csr_matrix, neighbours: int = NEIGHBOURS) -> sp.csr_matrix:
    """Items x items: row i holds, for every item j that has i among its `neighbours` most similar, their cosine.

    Cosine of the items' buyer sets (Sarwar et al. 2001), from the sparse co-purchase counts: purchase
    data is sparse, so only pairs bought together by someone are ever touched. A customer's neighbour
    scores are the sum of the rows of the items they bought.
    The co-purchase counts X^T X are made a slab of items at a time and only each item's nearest are
    kept, so no more than a slab of X^T X is ever held (all of it is 260 MB at 10M transactions and
    grows with the data; a slab is a few percent of it).
    """
    x = (counts > 0).astype(np.float32).tocsr()
    n = x.shape[1]
    keep = max(0, min(neighbours, n - 1))
    if keep == 0 or x.nnz == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    by_item = x.tocsc()  # columns: each item's buyers, sliced a slab at a time
    buyers = np.diff(by_item.indptr).astype(np.float32)
    step = max(1, -(-n // NEIGHBOUR_SLABS))
    nearest, candidates, cosines = [], [], []
    for first in range(0, n, step):
        last = min(first + step, n)
        together = (by_item[:, first:last].T @ x).tocsr()  # slab items x items: buyers in common
        together.sort_indices()
        item = np.repeat(np.arange(first, last), np.diff(together.indptr))
        other = together.indices
        pair = (other != item) & (together.data != 0)  # an item is not its own neighbour
        cosine = together.data / np.sqrt(buyers[other] * buyers[item])
        kept = pair.copy()
        per_row = np.diff(np.r_[0, np.cumsum(pair)][together.indptr])
        for row in np.flatnonzero(per_row > keep):  # only items with more candidates than kept
            start, end = together.indptr[row], together.indptr[row + 1]
            drop = np.flatnonzero(pair[start:end])
            drop = drop[np.argpartition(-cosine[start:end][drop], keep - 1)[keep:]]
            kept[start + drop] = False
        nearest.append(item[kept])
        candidates.append(other[kept])
        cosines.append(cosine[kept].astype(np.float32))
    # row j of the pairs kept: item j's nearest items; transposed, row i holds the items i is nearest to
    return sp.csr_matrix(
        (np.concatenate(cosines), (np.concatenate(candidates), np.concatenate(nearest))), shape=(n, n), dtype=np.float32
    )


def blend_neighbours(cf_scores: np.ndarray, neighbour_scores: np.ndarray, weight: float) -> np.ndarray:
    """Collaborative scores plus `weight` x the item-neighbour scores, each scaled to at most 1 per row.

    The factor model ranks what is bought widely by people like you; the neighbours add the products
    bought with your own products, which differ from customer to customer: variety that stays relevant.
    """
    if weight == 0.0:
        return cf_scores
    return scaled_rows(cf_scores) + weight * scaled_rows(neighbour_scores)


def blend_neighbours_into(
    cf_scores: np.ndarray, largest: np.ndarray, bought: sp.csr_matrix, neighbours: sp.csr_matrix, weight: float
) -> np.ndarray:
    """`blend_neighbours(cf_scores, bought @ neighbours, weight)` in place, with the same float32 arithmetic in the
    same order (bit for bit the same scores), for the customer lists' blocks of users.

    `largest` is each row's largest absolute score, `bought` the rows' purchases as a binary CSR matrix. The
    neighbour sums skip the sparse-times-sparse product: the neighbour rows of every bought item, gathered
    customer after customer, are added up straight into a dense block. Items set to -inf stay -inf.
    """
    if weight == 0.0:
        return cf_scores
    cf_scores /= np.where(largest > 0, largest, 1.0)[:, None]
    picked = neighbours[bought.indices]  # row p: the neighbours of the p-th (customer, item bought) pair
    by_customer = sp.csr_matrix((picked.data, picked.indices, picked.indptr[bought.indptr]), shape=cf_scores.shape)
    sums = by_customer.toarray()  # adds the repeated entries in order, as the product's accumulator does
    if not sums.size:
        return cf_scores
    top = sums.max(axis=1)  # the sums are never negative: their largest absolute value
    sums /= np.where(top > 0, top, 1.0)[:, None]
    sums *= weight
    cf_scores += sums
    return cf_scores


def blend_rebuy(cf_scores: np.ndarray, own_counts: np.ndarray, rebuy_weight: float) -> np.ndarray:
    """Collaborative scores plus the user's own purchase counts, each scaled to at most 1 per row."""
    return scaled_rows(cf_scores) + rebuy_weight * scaled_rows(np.log1p(own_counts))


def popularity_scores(counts: sp.csr_matrix) -> np.ndarray:
    """Buyers per item."""
    return np.asarray((counts > 0).sum(axis=0), dtype=np.float32).ravel()


def debias_weights(popularity: np.ndarray, exponent: float) -> np.ndarray:
    """Per-item score multipliers 1 / (buyers + 1) ** exponent: popularity debiasing (Steck 2011; Abdollahpouri 2019).

    Scores of a factor model are inflated for best-sellers (they load on the leading factors); dividing
    by a power of popularity lets each customer's specific products through. Folded into the item side
    of the model, it costs nothing when serving.
    """
    if exponent == 0.0:
        return np.ones(popularity.shape, dtype=np.float32)
    return (1.0 / np.power(popularity.astype(np.float64) + 1.0, exponent)).astype(np.float32)


class Popularity:
    """The best-sellers, the same list for everyone: the baseline any model must beat."""

    def fit(self, counts: sp.csr_matrix) -> Self:
        self._popularity = popularity_scores(counts)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._popularity, (len(rows), self._popularity.size))


class BuyAgain:
    """The user's own most-bought items first, best-sellers after: the baseline for lists with re-buys."""

    def fit(self, counts: sp.csr_matrix) -> Self:
        popularity = popularity_scores(counts)
        self._counts = counts.tocsr()
        self._tiebreak = popularity / (popularity.max() + 1.0)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return self._counts[rows].toarray() + self._tiebreak


@dataclass(frozen=True)
class SvdBasis:
    """The costly part of a shrunk-SVD fit; every rank up to its own and every shrinkage reuse it."""

    counts: sp.csr_matrix
    weighted: sp.csr_matrix
    weighting: str
    item_factors: np.ndarray  # items x rank
    singular_values: np.ndarray
    neighbours: sp.csr_matrix | None = None  # item_neighbours(counts), when a blend needs them

    @property
    def popularity(self) -> np.ndarray:
        return popularity_scores(self.counts)

    @classmethod
    def fit(
        cls,
        counts: sp.csr_matrix,
        weighting: str,
        rank: int,
        seed: int = 0,
        neighbours: sp.csr_matrix | None = None,
    ) -> SvdBasis:
        weighted = weigh(counts, weighting)
        v, s = fit_factors(weighted, rank, seed)
        return cls(counts.tocsr(), weighted, weighting, v, s, neighbours)


class ShrunkSvd:
    """RecoMart's model (see the module docstring); with `rebuy`, blended with the user's own purchases."""

    def __init__(self, params: ModelParams, rebuy: bool = False, seed: int = 0) -> None:
        self.params, self.rebuy, self.seed = params, rebuy, seed

    def fit(self, counts: sp.csr_matrix) -> Self:
        neighbours = item_neighbours(counts) if self.params.neighbour_weight > 0 else None
        return self.fit_basis(SvdBasis.fit(counts, self.params.weighting, self.params.factors, self.seed, neighbours))

    def fit_basis(self, basis: SvdBasis) -> Self:
        """Fit from factors already computed with the same weighting (the tuner tries many ranks on one)."""
        if basis.weighting != self.params.weighting:
            raise ValueError(f"a {basis.weighting} basis cannot fit a {self.params.weighting} model")
        if self.params.neighbour_weight > 0 and basis.neighbours is None:
            raise ValueError("a blend with item neighbours needs a basis fitted with them")
        self._basis = basis
        self._binary = (basis.counts > 0).astype(np.float32).tocsr() if self.params.neighbour_weight > 0 else None
        self._factors = basis.item_factors[:, : self.params.factors]
        self._weights = shrink(basis.singular_values[: self.params.factors], self.params.shrinkage)
        self._targets = self._factors.T * debias_weights(basis.popularity, self.params.popularity_exponent)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        scores = np.asarray(self._basis.weighted[rows] @ self._factors) * self._weights @ self._targets
        if self.params.neighbour_weight > 0 and not self.rebuy:  # variety is for the new-product lists
            neighbour_scores = (self._binary[rows] @ self._basis.neighbours).toarray()
            scores = blend_neighbours(scores, neighbour_scores, self.params.neighbour_weight)
        if not self.rebuy:
            return scores
        return blend_rebuy(scores, self._basis.counts[rows].toarray(), self.params.rebuy_weight)
