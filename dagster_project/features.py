"""Features: per user, per item, and the user x item interaction table.

The interaction table is long (one row per user and product bought) rather than a matrix on disk: it
is what Parquet stores well, and the model turns it into a scipy.sparse matrix in one call.

User and product ids are turned into integer codes once (`build`): every group-by after that is on
integers, not text (at 10M purchases, hashing the id text was most of the time spent here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# When a customer (or a customer-product pair) was first and last seen buying.
PURCHASE_SPAN = {"first_purchase": ("timestamp", "min"), "last_purchase": ("timestamp", "max")}
# Up to this many users x categories cells, favourite categories come from one dense table of counts (8 bytes a
# cell: 256 MB at most), beyond it from a group-by on the (user, category) pairs.
DENSE_CELLS = 1 << 25


@dataclass(frozen=True)
class _Coded:
    """Transactions with an integer code per user and per product (-1: missing), and each code's id."""

    transactions: pd.DataFrame
    user: np.ndarray
    users: pd.api.extensions.ExtensionArray | np.ndarray
    product: np.ndarray
    products: pd.api.extensions.ExtensionArray | np.ndarray

    @classmethod
    def of(cls, transactions: pd.DataFrame) -> _Coded:
        user, users = pd.factorize(transactions["user_id"])
        product, products = pd.factorize(transactions["product_id"])
        return cls(transactions, user.astype(np.int64), users, product.astype(np.int64), products)

    def grouped(self, codes: np.ndarray, uniques=None):
        """The transactions grouped by `codes`, rows with a missing id left out (as pandas' dropna does).

        With `uniques` (codes from 0 to their number) the codes are used as they are, sorted; without, the
        groups are hashed and kept in order of first appearance.
        """
        known = codes >= 0
        frame = self.transactions if known.all() else self.transactions.loc[known]
        codes = codes if known.all() else codes[known]
        if uniques is None:
            return frame.groupby(codes, sort=False)
        key = pd.Categorical.from_codes(codes, categories=pd.RangeIndex(len(uniques)))
        return frame.groupby(key, observed=True, sort=True)

    def ids(self, codes: np.ndarray, uniques, name: str) -> pd.Index:
        return pd.Index(uniques.take(codes), name=name)

    def pairs(self) -> pd.DataFrame:
        """Per (user, product) bought: purchases, quantity, spend, first/last time, in order of first purchase.

        Indexed by `user * products + product` (the pair's code).
        """
        key = self.user * max(len(self.products), 1) + self.product
        key[(self.user < 0) | (self.product < 0)] = -1
        return self.grouped(key).agg(
            purchases=("quantity", "size"), quantity=("quantity", "sum"), spend=("amount", "sum"), **PURCHASE_SPAN
        )

    def split(self, pair_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user code, product code) of each pair code."""
        width = max(len(self.products), 1)
        return pair_codes // width, pair_codes % width


def _interaction_frame(coded: _Coded, pairs: pd.DataFrame) -> pd.DataFrame:
    user, product = coded.split(pairs.index.to_numpy())
    table = pairs.reset_index(drop=True)
    table.insert(0, "user_id", coded.users.take(user))
    table.insert(1, "product_id", coded.products.take(product))
    table["confidence"] = np.log1p(table["purchases"].to_numpy(dtype="float64"))
    return table


@dataclass(frozen=True)
class _Pairs:
    """The interaction table with an integer code per user and per product: what the features are made of.

    Every user and item figure is a sum, count, minimum or maximum over a customer's or a product's pairs,
    so the same code makes the features of a full build and of an update (`extend`).
    """

    table: pd.DataFrame
    user: np.ndarray
    users: pd.Index
    product: np.ndarray
    products: pd.Index

    @classmethod
    def of(cls, table: pd.DataFrame) -> _Pairs:
        from dagster_project.training import factorize  # Arrow's encoder for Arrow-backed text

        user, users = factorize(table["user_id"])
        product, products = factorize(table["product_id"])
        return cls(table, user.astype(np.int64), users, product.astype(np.int64), products)

    @classmethod
    def coded(cls, coded: _Coded, pairs: pd.DataFrame) -> _Pairs:
        user, product = coded.split(pairs.index.to_numpy())
        return cls(_interaction_frame(coded, pairs), user, pd.Index(coded.users), product, pd.Index(coded.products))

    def total(self, codes: np.ndarray, size: int, column: str | None = None) -> np.ndarray:
        """Per code: the number of pairs, or the sum of `column` over them."""
        weights = None if column is None else np.nan_to_num(self.table[column].to_numpy(dtype="float64"), nan=0.0)
        return np.bincount(codes, weights=weights, minlength=size)

    def span(self, codes: np.ndarray, column: str, how: str) -> pd.Series:
        """Per code present: the min or max of a time column."""
        return self.table[column].groupby(codes, sort=True).agg(how)


def _favourite_category(pairs: _Pairs, products: pd.DataFrame) -> pd.Series:
    """Per user, the category they bought most often (ties: the first category by name), on integer codes."""
    categories = pd.Categorical(products["category"])
    # each bought product's position in the catalogue, looked up once per product, not once per pair
    position = pd.Index(products["product_id"]).get_indexer(pairs.products)
    row_position = position[pairs.product]
    known = row_position >= 0
    users = pairs.user[known]
    category = categories.codes[row_position[known]]
    width = max(len(categories.categories), 1) + 1  # codes run from -1 (no category) up
    keys = users * width + (category + 1)
    purchases = pairs.table["purchases"].to_numpy()[known]
    if len(pairs.users) * width <= DENSE_CELLS:  # a users x categories table of counts: argmax takes the first
        table = np.bincount(keys, weights=purchases, minlength=len(pairs.users) * width).reshape(-1, width)
        user = np.flatnonzero(table.any(axis=1))
        code = table[user].argmax(axis=1) - 1  # the most bought; ties: the lowest code, the first by name
    else:
        counts = pd.Series(purchases).groupby(keys, sort=False).sum()
        keys, n = counts.index.to_numpy(), counts.to_numpy()
        user, code = keys // width, keys % width - 1
        order = np.lexsort((code, -n, user))  # per user: most bought first, then the category first by name
        first = order[np.r_[True, user[order][1:] != user[order][:-1]]] if len(order) else order
        user, code = user[first], code[first]
    index = pd.Index(pairs.users.take(user), name="user_id")
    return pd.Series(categories.categories[code], index=index, dtype="string")


def _user_stats(pairs: _Pairs, products: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per user with pairs: purchases, spend, first/last time, recency from `as_of` (default: their latest), favourite.

    Each figure is a sum, count, minimum or maximum over the user's own pairs (sums in table order), so the
    rows of some users come out the same from their pairs alone as from the whole table (feature_update.py).
    """
    n = len(pairs.users)
    products_bought = pairs.total(pairs.user, n)
    present = np.flatnonzero(products_bought > 0)
    stats = pd.DataFrame(
        {
            "transactions": pairs.total(pairs.user, n, "purchases")[present].round().astype("int64"),
            "products_bought": products_bought[present].astype("int64"),
            "total_quantity": pairs.total(pairs.user, n, "quantity")[present].round().astype("int64"),
            "total_spend": pairs.total(pairs.user, n, "spend")[present],
            "first_purchase": pairs.span(pairs.user, "first_purchase", "min").array,
            "last_purchase": pairs.span(pairs.user, "last_purchase", "max").array,
        },
        index=pd.Index(pairs.users.take(present), name="user_id"),
    )
    as_of = pairs.table["last_purchase"].max() if as_of is None else as_of
    stats["avg_order_value"] = stats["total_spend"] / stats["transactions"]
    stats["recency_days"] = recency_days(stats["last_purchase"], as_of)
    stats["favourite_category"] = _favourite_category(pairs, products)
    return stats


def recency_days(last_purchase: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Days from each last purchase to `as_of`, the latest purchase of all (NaN: never bought)."""
    return (as_of - last_purchase).dt.total_seconds() / 86400.0


# The user features' columns counted from purchases (the rest is the customer's profile).
USER_STATS = [
    "transactions",
    "products_bought",
    "total_quantity",
    "total_spend",
    "first_purchase",
    "last_purchase",
    "avg_order_value",
    "recency_days",
    "favourite_category",
]


def _user_features(pairs: _Pairs, users: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    stats = _user_stats(pairs, products)
    profile = users[["user_id", "age", "gender", "country", "gender_code", "country_code", "age_scaled"]]
    out = profile.merge(stats.reset_index(), on="user_id", how="left")
    counts = ["transactions", "products_bought", "total_quantity"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["total_spend"] = out["total_spend"].fillna(0.0)
    return out


def _item_features(pairs: _Pairs, products: pd.DataFrame) -> pd.DataFrame:
    n = len(pairs.products)
    buyers = pairs.total(pairs.product, n)
    present = np.flatnonzero(buyers > 0)
    repeat_buyers = np.bincount(pairs.product, weights=pairs.table["purchases"].to_numpy() > 1, minlength=n)
    stats = pd.DataFrame(
        {
            "purchases": pairs.total(pairs.product, n, "purchases")[present].round().astype("int64"),
            "total_quantity": pairs.total(pairs.product, n, "quantity")[present].round().astype("int64"),
            "revenue": pairs.total(pairs.product, n, "spend")[present],
            "last_purchase": pairs.span(pairs.product, "last_purchase", "max").array,
            "buyers": buyers[present].astype("int64"),
            "repeat_buyer_share": repeat_buyers[present] / buyers[present],
        },
        index=pd.Index(pairs.products.take(present), name="product_id"),
    )
    return item_table(stats, products)


def item_table(stats: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """The catalogue with each sold product's figures (`stats`, by product id), zeros for the unsold, ranked."""
    out = products[["product_id", "name", "category", "brand", "price"]].merge(
        stats.reset_index(), on="product_id", how="left"
    )
    counts = ["purchases", "total_quantity", "buyers"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out[["revenue", "repeat_buyer_share"]] = out[["revenue", "repeat_buyer_share"]].fillna(0.0)
    out["popularity_rank"] = out["buyers"].rank(method="min", ascending=False).astype("int64")
    return out.sort_values("popularity_rank", kind="stable").reset_index(drop=True)


def _features(pairs: _Pairs, users: pd.DataFrame, products: pd.DataFrame):
    return _user_features(pairs, users, products), _item_features(pairs, products), pairs.table


def build(
    transactions: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(user features, item features, interaction table) of the same transactions, ids coded once."""
    coded = _Coded.of(transactions)
    return _features(_Pairs.coded(coded, coded.pairs()), users, products)


def add_purchases(interactions: pd.DataFrame, transactions: pd.DataFrame | None) -> pd.DataFrame:
    """The interaction table with `transactions` added: pairs bought again updated, new pairs after the rest.

    When the transactions come after every purchase already counted, this is the table of the whole
    history `interaction_table` gives (pairs in order of first purchase), without reading the history.
    `interactions` is updated in place (it is the stored table, read for this): no copy of a large table.
    """
    if transactions is None or transactions.empty:
        return interactions
    fresh = interaction_table(transactions)
    buyers = interactions["user_id"].isin(pd.unique(fresh["user_id"].to_numpy()))
    known = interactions.loc[buyers, ["user_id", "product_id"]].reset_index(names="at")
    matched = known.merge(fresh[["user_id", "product_id"]].reset_index(names="fresh"), on=["user_id", "product_id"])
    at, new = matched["at"].to_numpy(), matched["fresh"].to_numpy()
    out = interactions
    for column in ("purchases", "quantity", "spend"):
        values = out[column].to_numpy(copy=True)
        values[at] += fresh[column].to_numpy()[new]
        out[column] = values
    for column, pick in (("first_purchase", np.minimum), ("last_purchase", np.maximum)):
        values = out[column].array.copy()
        values[at] = pick(values[at], fresh[column].array[new])
        out[column] = values
    out["confidence"] = np.log1p(out["purchases"].to_numpy(dtype="float64"))
    added = fresh.drop(index=new)
    return pd.concat([out, added], ignore_index=True) if len(added) else out


def extend(
    interactions: pd.DataFrame, transactions: pd.DataFrame | None, users: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`build` of the history behind `interactions` plus `transactions`, from the interaction table alone."""
    return _features(_Pairs.of(add_purchases(interactions, transactions)), users, products)


def interaction_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, product): purchases, quantity, spend, first/last time, and a confidence."""
    coded = _Coded.of(transactions)
    return _interaction_frame(coded, coded.pairs())


def user_features(transactions: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Purchase behaviour per known user (zeros for users who bought nothing), joined to their profile."""
    return build(transactions, users, products)[0]


def item_features(transactions: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Popularity, buyers, revenue and repeat-buying per product (zeros for products nobody bought)."""
    coded = _Coded.of(transactions)
    return _item_features(_Pairs.coded(coded, coded.pairs()), products)
