"""Training: choose the model's settings on a validation slice, measure it on a time holdout, fit it on all.

1. Cut the transactions in time: the last `test_share` is the test set.
2. Cut the training part again the same way: fit on the earlier part, score the later part, and pick
   the rank, shrinkage and confidence weighting with the best NDCG@10 on new items; then the weight of
   the blend with item neighbours (and shrinkage again) with the best NDCG@10 among the settings whose
   new-products lists cover at least `min_coverage` of the catalogue (the "Variety" asked for); then
   the re-buy weight with the best NDCG@10 on lists with re-buys. The model adapts to the shop it is
   given, and every setting tried is kept with its NDCG and coverage: the accuracy-variety curve on the
   model card.
3. Fit the chosen settings on the whole training part and score the test set, beside the best-seller
   and buy-again baselines: those are the figures on the model card.
4. Fit the chosen settings on all transactions: that is the model served.

A figure over a handful of customers is noise, and over none it is a 0.0 that looks like a bad model.
When the time cut leaves fewer than `min_eval_users` customers to measure (every timestamp equal, one
day of data, a few customers), a seeded random cut is tried instead and the card says so; a list that
still cannot be measured is left out of the metrics, and the card says "not measured" and why.
Tuning falls back to the default settings the same way.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    import pyarrow as pa

from dagster_project import evaluation as ev
from dagster_project.model_card import (
    LIST_KINDS,
    LIST_NAMES,
    HoldoutSummary,
    ListKind,
    Metrics,
    ModelCard,
    ModelParams,
    Trial,
    TuningSample,
)
from dagster_project.recommender import ITEM_COLUMNS, RecommenderModel
from dagster_project.scorers import (
    BuyAgain,
    Popularity,
    Scorer,
    SvdBasis,
    item_neighbours,
    popularity_scores,
    shrink,
)
from dagster_project.trial_lists import TrialLists

PROFILE_COLUMNS = ["name", "email", "age", "gender", "country", "segment"]
DEFAULT_MIN_COVERAGE = 0.05
CHECKSUM_ROWS = 1 << 20  # transactions per slice of data_checksum


@dataclass(frozen=True)
class TrainingSettings:
    factor_grid: tuple[int, ...] = (8, 16, 32, 64, 128)
    shrinkage_grid: tuple[float, ...] = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)
    weightings: tuple[str, ...] = ("binary", "log")
    rebuy_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0)
    neighbour_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
    min_coverage: float = DEFAULT_MIN_COVERAGE  # least catalogue share of the new-products lists on validation
    test_share: float = 0.2
    max_eval_users: int = 2000  # validation customers per trial (a seeded sample beyond that)
    max_test_users: int = 20000  # holdout customers measured (a seeded sample beyond that)
    min_eval_users: int = 10  # below this many customers a list's figures are not reported
    k: int = 10
    seed: int = 0


@dataclass(frozen=True)
class Purchases:
    """The transactions as training cuts and counts them: customer row, product column (int32) and time.

    Looked up once per training run: every split and matrix reuses these codes instead of hashing a
    million ids again, and a cut copies 16 bytes a transaction instead of the whole table's columns.
    """

    rows: np.ndarray  # int32: the customer's row in the model
    columns: np.ndarray  # int32: the product's column, -1 when it is not in the catalogue
    times: pd.api.extensions.ExtensionArray | np.ndarray  # the transactions' timestamps

    def __len__(self) -> int:
        return self.rows.size

    def take(self, keep: np.ndarray) -> Purchases:
        return Purchases(self.rows[keep], self.columns[keep], self.times[keep])

    def counts(self, shape: tuple[int, int]) -> sp.csr_matrix:
        """Users x items purchase counts; purchases of products outside the catalogue are left out."""
        return _counts(self.rows, self.columns, np.ones(len(self), dtype=np.float32), shape)


def _counts(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _sparse(frame: pd.DataFrame, users: pd.Index, items: pd.Index, values: np.ndarray) -> sp.csr_matrix:
    """Users x items matrix of `values`, summed per pair; rows whose user or item is not indexed are ignored."""
    rows, cols = users.get_indexer(frame["user_id"]), items.get_indexer(frame["product_id"])
    return _counts(rows, cols, values, (len(users), len(items)))


def _arrow_strings(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def _arrow(values: pd.Series) -> pa.Array:
    """The column as one Arrow array (no copy when it is one chunk already)."""
    import pyarrow as pa

    array = pa.array(values)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """`pd.factorize`: int32 codes (-1 for missing) and the distinct values in order of first appearance.

    Arrow-backed text is encoded by Arrow: pandas would hash a Python string per row (a gigabyte at 10M).
    """
    if not _arrow_strings(values):
        codes, uniques = pd.factorize(values)
        return codes.astype(np.int32), pd.Index(uniques)
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(_arrow(values))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes, pd.Index(pd.array(encoded.dictionary, dtype=values.dtype))


def positions(values: pd.Series, index: pd.Series) -> np.ndarray:
    """Where each of `values` is in `index` (unique), -1 when it is not there: `Index.get_indexer`, as int32."""
    if not (_arrow_strings(values) and _arrow_strings(index)):
        return pd.Index(index).get_indexer(values).astype(np.int32)
    import pyarrow.compute as pc

    found = pc.index_in(_arrow(values), value_set=_arrow(index))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def count_matrix(transactions: pd.DataFrame, users: pd.Index, items: pd.Index) -> sp.csr_matrix:
    """Users x items purchase counts from transactions."""
    return _sparse(transactions, users, items, np.ones(len(transactions), dtype=np.float32))


def interaction_counts(interactions: pd.DataFrame, users: pd.Index, items: pd.Index) -> sp.csr_matrix:
    """Users x items purchase counts from the long interaction table (features.interaction_table)."""
    return _sparse(interactions, users, items, interactions["purchases"].to_numpy(dtype=np.float32))


def data_checksum(transactions: pd.DataFrame) -> str:
    """A fingerprint of the training data (order-independent hash of the rows)."""
    import hashlib

    step = CHECKSUM_ROWS  # rows hashed a slice at a time: hashing text makes a Python string of every value
    row_hashes = np.concatenate(
        [np.empty(0, dtype=np.uint64)]
        + [
            pd.util.hash_pandas_object(transactions.iloc[start : start + step], index=False).to_numpy()
            for start in range(0, len(transactions), step)
        ]
    )
    return hashlib.sha256(np.sort(row_hashes).tobytes()).hexdigest()


def customer_profiles(
    users: pd.DataFrame, transactions: pd.DataFrame, codes: tuple[np.ndarray, pd.Index] | None = None
) -> pd.DataFrame:
    """Every known customer (in the users table or buying), indexed by id: profile, purchases, spend, last purchase.

    The model carries these so the app can list and search customers from the model file alone.
    `codes` are `factorize(transactions["user_id"])`, when the caller has them already.
    """
    columns = [c for c in PROFILE_COLUMNS if c in users]
    profiles = users.drop_duplicates("user_id").set_index("user_id")[columns]
    if codes is None:
        codes = factorize(transactions["user_id"])
    rows, customers = codes  # grouped on the customers' int codes, not their ids (text hashed per row)
    known = rows >= 0
    listed = positions(profiles.index.to_series(), customers.to_series())  # each profile's customer code
    bought = np.zeros(len(customers), dtype=bool)
    bought[listed[listed >= 0]] = True
    # buyers missing from the users table, by id (in order of first purchase when the table is empty)
    missing = np.flatnonzero(~bought)
    if len(profiles):
        missing = missing[customers[missing].argsort(kind="stable")]
    profiles = pd.concat([profiles, pd.DataFrame(index=customers[missing])])
    code = np.concatenate([listed, missing])
    found = code >= 0
    code = np.where(found, code, 0)
    # each customer's figures gathered by code (a join on the text ids would hash a million strings again)
    purchases = np.bincount(rows[known], minlength=len(customers))
    profiles["purchases"] = np.where(found, purchases[code] if purchases.size else 0, 0).astype("int64")

    every = bool(known.all())  # then no copy of the column is taken

    def per_customer(column: str) -> pd.core.groupby.SeriesGroupBy:
        values = transactions[column].array
        return pd.Series(values if every else values[known]).groupby(rows if every else rows[known])

    spend = np.zeros(len(profiles))
    if "amount" in transactions:
        totals = per_customer("amount").sum().reindex(range(len(customers)), fill_value=0.0).to_numpy(dtype="float64")
        spend = np.where(found, totals[code] if totals.size else 0.0, 0.0)
    profiles["spend"] = np.nan_to_num(spend, nan=0.0)
    last = pd.Series(pd.NaT, index=range(len(profiles)), dtype="datetime64[ns, UTC]")
    if "timestamp" in transactions:
        latest = pd.to_datetime(per_customer("timestamp").max(), utc=True).astype("datetime64[ns, UTC]")
        latest = latest.reindex(range(len(customers)))
        last = latest.iloc[code].where(found) if len(customers) else last
    profiles["last_purchase"] = last.array
    profiles.index = pd.Index(profiles.index.astype("string"), name="user_id")
    return profiles


def tuning_users(holdout: ev.Holdout, settings: TrainingSettings) -> dict[ListKind, np.ndarray]:
    """The validation customers every setting is measured on: at most `max_eval_users` per list (seeded)."""
    return {kind: ev.sample_users(holdout.users(kind), settings.max_eval_users, settings.seed) for kind in LIST_KINDS}


def tuning_sample(holdout: ev.Holdout, settings: TrainingSettings) -> TuningSample:
    """`tuning_users` as the model card states them."""
    users = tuning_users(holdout, settings)
    return TuningSample(
        users={kind: int(users[kind].size) for kind in LIST_KINDS},
        available={kind: int(holdout.users(kind).size) for kind in LIST_KINDS},
        cap=settings.max_eval_users,
        seed=settings.seed,
    )


def select_params(holdout: ev.Holdout, settings: TrainingSettings) -> tuple[ModelParams, list[Trial]]:
    """Coordinate search on a validation holdout; returns the best settings and every trial's score.

    Shrinkage matters most, then weighting, then rank (PureSVD is flat in k once shrunk), so: shrinkage
    x weighting at a middle rank, then the rank, then shrinkage again at that rank, for the best NDCG.
    Then variety: the blend with item neighbours, shrinkage again (each also with the next stronger blend) and
    the blend's neighbouring weights, each for the best
    NDCG among settings whose new-products lists cover at least `settings.min_coverage` of the
    catalogue (the most-covering one when none does). Then the re-buy weight.
    One SVD per weighting at the highest rank serves every trial (lower ranks are its leading factors).
    """
    users = tuning_users(holdout, settings)
    max_rank = max(1, min(holdout.train.shape) - 1)
    ranks = sorted({min(f, max_rank) for f in settings.factor_grid})
    with ThreadPoolExecutor(max_workers=2) as pool:  # the sparse products release the GIL: fits run side by side
        fits = {w: pool.submit(SvdBasis.fit, holdout.train, w, ranks[-1], settings.seed) for w in settings.weightings}
        neighbours = item_neighbours(holdout.train) if any(settings.neighbour_grid) else None
        bases = {w: replace(fit.result(), neighbours=neighbours) for w, fit in fits.items()}
    trials: list[Trial] = []
    scores: dict[tuple[ListKind, ModelParams], Trial] = {}
    prepared: dict[tuple[str, ListKind], TrialLists] = {}

    def trial(params: ModelParams, list_kind: ListKind = "new") -> Trial:
        """One setting on one list, each measured once (the same settings score differently per list)."""
        key = (list_kind, params)
        if key not in scores:
            at = (params.weighting, list_kind)
            if at not in prepared:  # the customers' share of the work, once per basis and list
                for other in [key for key in prepared if key[1] == list_kind]:  # one basis's share held at a time
                    del prepared[other]  # (a 2,000 x products block each; the other basis rarely comes back)
                prepared[at] = TrialLists(bases[params.weighting], holdout, list_kind, settings.k, users[list_kind])
            metrics, _ = ev.measure_lists(prepared[at].lists(params), holdout, list_kind, settings.k, users[list_kind])
            scores[key] = Trial(list_kind, params, metrics.ndcg, metrics.coverage)
            trials.append(scores[key])
        return scores[key]

    def best_of(candidates: list[ModelParams], list_kind: ListKind = "new", floor: float | None = None) -> ModelParams:
        def key(p: ModelParams) -> tuple[float, ...]:
            t = trial(p, list_kind)
            if floor is None:
                return (t.ndcg, -candidates.index(p))
            enough = t.coverage >= floor
            return (enough, t.ndcg if enough else t.coverage, -candidates.index(p))

        return max(candidates, key=key)

    middle = min(ranks, key=lambda r: abs(r - 64))
    best = best_of([ModelParams(middle, lam, w) for w in settings.weightings for lam in settings.shrinkage_grid])
    best = best_of([replace(best, factors=r) for r in ranks])
    best = best_of([replace(best, shrinkage=lam) for lam in settings.shrinkage_grid])
    floor = settings.min_coverage
    best = best_of([replace(best, neighbour_weight=g) for g in settings.neighbour_grid], floor=floor)
    # more shrinkage narrows the lists, so each shrinkage is also tried with the next stronger blend
    stronger = [g for g in settings.neighbour_grid if g > best.neighbour_weight][:1]
    pairs = [(lam, g) for lam in settings.shrinkage_grid for g in (best.neighbour_weight, *stronger)]
    best = best_of([replace(best, shrinkage=lam, neighbour_weight=g) for lam, g in pairs], floor=floor)
    grid = settings.neighbour_grid
    at = grid.index(best.neighbour_weight) if best.neighbour_weight in grid else 0
    best = best_of([replace(best, neighbour_weight=g) for g in grid[max(0, at - 1) : at + 2]], floor=floor)
    best = best_of([replace(best, rebuy_weight=w) for w in settings.rebuy_grid], "rebuy")
    return best, trials


def holdout_metrics(
    holdout: ev.Holdout, params: ModelParams, settings: TrainingSettings
) -> dict[ListKind, dict[str, Metrics]]:
    """The chosen model beside the baselines, per list (the same customers for every model).

    A list with fewer than `settings.min_eval_users` customers to measure is left out.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        fit = pool.submit(SvdBasis.fit, holdout.train, params.weighting, params.factors, settings.seed)
        neighbours = item_neighbours(holdout.train) if params.neighbour_weight > 0 else None
        basis = replace(fit.result(), neighbours=neighbours)
    baselines: dict[ListKind, dict[str, Scorer]] = {
        "new": {"popularity": Popularity().fit(holdout.train)},
        "rebuy": {"popularity": Popularity().fit(holdout.train), "buy_again": BuyAgain().fit(holdout.train)},
    }
    metrics = {}
    for kind, models in baselines.items():
        users = ev.sample_users(holdout.users(kind), settings.max_test_users, settings.seed)
        if users.size >= settings.min_eval_users:
            svd = TrialLists(basis, holdout, kind, settings.k, users, cache=False).lists(params)
            metrics[kind] = {"svd": ev.measure_lists(svd, holdout, kind, settings.k, users)[0]}
            metrics[kind] |= {name: ev.evaluate(m, holdout, kind, settings.k, users) for name, m in models.items()}
    return metrics


@dataclass(frozen=True)
class Split:
    """A train/test cut of the transactions, its holdout, and how many customers each list can measure."""

    train: Purchases | None  # the training part's transactions (cut again for validation, then let go)
    holdout: ev.Holdout
    protocol: str  # "time split" or "random split"
    cutoff: pd.Timestamp | None  # time splits only
    users: dict[ListKind, int]  # customers measurable per list


def _split(
    purchases: Purchases, test: np.ndarray, protocol: str, cutoff: pd.Timestamp | None, shape: tuple[int, int]
) -> Split:
    train = purchases.take(~test)
    holdout = ev.make_holdout(train.counts(shape), purchases.take(test).counts(shape))
    measurable = {kind: int(holdout.users(kind).size) for kind in LIST_KINDS}
    return Split(train, holdout, protocol, cutoff, measurable)


def evaluation_split(purchases: Purchases, shape: tuple[int, int], settings: TrainingSettings) -> Split:
    """The time split; a seeded random split when time leaves too few customers on the new-products list."""
    cutoff = ev.time_cutoff(purchases.times, settings.test_share)
    by_time = _split(purchases, ~np.asarray(purchases.times < cutoff), "time split", cutoff, shape)
    if by_time.users["new"] >= settings.min_eval_users:
        return by_time
    test = ev.random_test_rows(len(purchases), settings.test_share, settings.seed)
    at_random = _split(purchases, test, "random split", None, shape)
    return at_random if at_random.users["new"] > by_time.users["new"] else by_time


def _not_measured(split: Split, metrics: dict, settings: TrainingSettings) -> dict[ListKind, str]:
    """Why each list has no figures, in words for the card and the app."""
    return {
        kind: (
            f"not measured: {split.users[kind]} customer(s) could be checked on {LIST_NAMES[kind]} with a "
            f"{split.protocol}, and at least {settings.min_eval_users} are needed for a figure that means "
            f"something"
        )
        for kind in LIST_KINDS
        if kind not in metrics
    }


def served_counts(
    purchases: Purchases,
    shape: tuple[int, int],
    interactions: pd.DataFrame | None,
    users: pd.Index,
    items: pd.Index,
) -> sp.csr_matrix:
    """The served model's purchase counts, from the codes training already holds.

    The interaction table (features.interaction_table) counts the same transactions per customer and
    product; it is read only when its totals disagree with the codes (then it is what the pipeline
    published, and the model follows it).
    """
    counts = purchases.counts(shape)
    if interactions is None:
        return counts
    same = len(interactions) == counts.nnz and int(interactions["purchases"].sum()) == int(
        counts.data.sum(dtype=np.float64)
    )
    return counts if same else interaction_counts(interactions, users, items)


def train_model(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    users: pd.DataFrame,
    settings: TrainingSettings = TrainingSettings(),
    fixed: ModelParams | None = None,
    card: dict[str, str] | None = None,
    interactions: pd.DataFrame | None = None,
) -> RecommenderModel:
    """Select, evaluate and fit the recommender on prepared tables (see the module docstring).

    `card` sets the card's caller-provided fields (`run_id`, `data_checksum`).
    One BLAS thread: training runs its own work side by side on threads (customer blocks, the SVDs),
    and BLAS threads on top of those mostly wait for each other (they tripled the SVDs' CPU time at 1M;
    scipy's QR, which the SVD calls, took ten times the CPU on two threads under load).
    """
    import scipy.linalg  # noqa: F401 - loads scipy's own BLAS, which a limit set before its import would miss
    import sklearn.utils.extmath  # noqa: F401 - the SVD's module, loaded before the limit for the same reason
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _train_model(transactions, products, users, settings, fixed, card, interactions)


def _train_model(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    users: pd.DataFrame,
    settings: TrainingSettings,
    fixed: ModelParams | None,
    card: dict[str, str] | None,
    interactions: pd.DataFrame | None,
) -> RecommenderModel:
    started = time.perf_counter()
    if transactions.empty:
        raise ValueError("No valid transactions left after preparation: nothing to train on.")
    user_rows, user_index = factorize(transactions["user_id"])  # customers in order of first purchase
    item_index = pd.Index(products["product_id"])
    item_columns = positions(transactions["product_id"], products["product_id"])
    purchases = Purchases(user_rows, item_columns, transactions["timestamp"].array)
    del user_rows, item_columns
    shape = (len(user_index), len(item_index))
    split = evaluation_split(purchases, shape, settings)
    counts = served_counts(purchases, shape, interactions, user_index, item_index)
    customer_rows = purchases.rows
    del purchases  # the codes are counted; only the customer codes are needed again (the profiles)

    selection = "fixed settings"
    tuning = None
    if fixed is not None:
        params, trials = fixed, []
    elif (validation := evaluation_split(split.train, shape, settings)).users["new"] >= settings.min_eval_users:
        split = replace(split, train=None)  # cut again; only its holdout is needed from here
        params, trials = select_params(validation.holdout, settings)
        tuning = tuning_sample(validation.holdout, settings)
        selection = f"chosen on a validation slice ({validation.protocol})"
        if tuning.users["new"] < tuning.available["new"]:
            selection += (
                f"; each setting measured on {tuning.users['new']:,} of its {tuning.available['new']:,} "
                f"customers, a fixed random sample"
            )
    else:
        params, trials = ModelParams(), []
        selection = (
            f"default settings: the validation slice had {validation.users['new']} customer(s) to "
            f"measure, fewer than {settings.min_eval_users}"
        )
    validation, split = None, replace(split, train=None)  # past the choice, only the test holdout is needed
    with ThreadPoolExecutor(max_workers=1) as pool:  # the test figures are measured while the served model fits
        measured = pool.submit(holdout_metrics, split.holdout, params, settings)
        n_items = counts.shape[1]
        neighbours = (
            item_neighbours(counts)
            if params.neighbour_weight > 0
            else sp.csr_matrix((n_items, n_items), dtype=np.float32)  # no blend: nothing to keep
        )
        basis = SvdBasis.fit(counts, params.weighting, params.factors, settings.seed)
        params = replace(params, factors=basis.item_factors.shape[1])
        profiles = customer_profiles(users, transactions, (customer_rows, user_index))
        metrics = measured.result()
    model_card = ModelCard(
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        params=params,
        selection=selection,
        holdout=HoldoutSummary(
            protocol=split.protocol,
            test_share=settings.test_share,
            cutoff=str(split.cutoff) if split.cutoff is not None else None,
            evaluated_users=split.users,
            min_users=settings.min_eval_users,
            k=settings.k,
            max_test_users=settings.max_test_users,
        ),
        metrics=metrics,
        not_measured=_not_measured(split, metrics, settings),
        trials=trials,
        min_coverage=settings.min_coverage,
        users=len(user_index),
        items=len(item_index),
        interactions=int(counts.nnz),
        transactions=len(transactions),
        train_seconds=round(time.perf_counter() - started, 3),
        tuning=tuning,
        **(card or {}),
    )
    return RecommenderModel(
        user_ids=user_index,
        user_profiles=profiles,
        items=products[ITEM_COLUMNS].reset_index(drop=True),
        counts=counts,
        item_factors=basis.item_factors,
        factor_weights=shrink(basis.singular_values, params.shrinkage),
        popularity=popularity_scores(counts),
        neighbours=neighbours.astype(np.float32).tocsr(),
        card=model_card,
    )
