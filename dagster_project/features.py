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


def _favourite_category(coded: _Coded, products: pd.DataFrame) -> pd.Series:
    """Per user, the category they bought most often (ties: the first category by name), on integer codes."""
    categories = pd.Categorical(products["category"])
    # each bought product's position in the catalogue, looked up once per product, not once per purchase
    position = pd.Index(products["product_id"]).get_indexer(pd.Index(coded.products))
    row_position = np.where(coded.product >= 0, position[coded.product], -1)
    known = (row_position >= 0) & (coded.user >= 0)
    users = coded.user[known]
    category = categories.codes[row_position[known]]
    width = max(len(categories.categories), 1) + 1  # codes run from -1 (no category) up
    counts = pd.Series(users * width + (category + 1)).value_counts(sort=False)
    keys, n = counts.index.to_numpy(), counts.to_numpy()
    user, code = keys // width, keys % width - 1
    order = np.lexsort((code, -n, user))  # per user: most bought first, then the category first by name
    first = order[np.r_[True, user[order][1:] != user[order][:-1]]] if len(order) else order
    return pd.Series(
        categories.categories[code[first]], index=coded.ids(user[first], coded.users, "user_id"), dtype="string"
    )


def _user_features(coded: _Coded, pairs: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    transactions = coded.transactions
    as_of = transactions["timestamp"].max()
    stats = coded.grouped(coded.user, coded.users).agg(
        transactions=("quantity", "size"),
        total_quantity=("quantity", "sum"),
        total_spend=("amount", "sum"),
        **PURCHASE_SPAN,
    )
    pair_users, _ = coded.split(pairs.index.to_numpy())
    stats.insert(1, "products_bought", np.bincount(pair_users, minlength=len(coded.users))[stats.index.to_numpy()])
    stats.index = coded.ids(stats.index.to_numpy(), coded.users, "user_id")
    stats["avg_order_value"] = stats["total_spend"] / stats["transactions"]
    stats["recency_days"] = (as_of - stats["last_purchase"]).dt.total_seconds() / 86400.0
    stats["favourite_category"] = _favourite_category(coded, products)
    profile = users[["user_id", "age", "gender", "country", "gender_code", "country_code", "age_scaled"]]
    out = profile.merge(stats.reset_index(), on="user_id", how="left")
    counts = ["transactions", "products_bought", "total_quantity"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["total_spend"] = out["total_spend"].fillna(0.0)
    return out


def _item_features(coded: _Coded, pairs: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    _, pair_products = coded.split(pairs.index.to_numpy())
    n = len(coded.products)
    buyers = np.bincount(pair_products, minlength=n)
    repeat_buyers = np.bincount(pair_products, weights=pairs["purchases"].to_numpy() > 1, minlength=n)
    stats = coded.grouped(coded.product, coded.products).agg(
        purchases=("quantity", "size"),
        total_quantity=("quantity", "sum"),
        revenue=("amount", "sum"),
        last_purchase=("timestamp", "max"),
    )
    codes = stats.index.to_numpy()
    stats["buyers"] = buyers[codes]
    # a product bought only by unknown customers has no buyers: no share (0 below)
    stats["repeat_buyer_share"] = np.divide(
        repeat_buyers[codes], buyers[codes], out=np.full(len(codes), np.nan), where=buyers[codes] > 0
    )
    stats.index = coded.ids(codes, coded.products, "product_id")
    out = products[["product_id", "name", "category", "brand", "price"]].merge(
        stats.reset_index(), on="product_id", how="left"
    )
    counts = ["purchases", "total_quantity", "buyers"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out[["revenue", "repeat_buyer_share"]] = out[["revenue", "repeat_buyer_share"]].fillna(0.0)
    out["popularity_rank"] = out["buyers"].rank(method="min", ascending=False).astype("int64")
    return out.sort_values("popularity_rank", kind="stable").reset_index(drop=True)


def build(
    transactions: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(user features, item features, interaction table) of the same transactions, ids coded once."""
    coded = _Coded.of(transactions)
    pairs = coded.pairs()
    return (
        _user_features(coded, pairs, users, products),
        _item_features(coded, pairs, products),
        _interaction_frame(coded, pairs),
    )


def interaction_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, product): purchases, quantity, spend, first/last time, and a confidence."""
    coded = _Coded.of(transactions)
    return _interaction_frame(coded, coded.pairs())


def user_features(transactions: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Purchase behaviour per known user (zeros for users who bought nothing), joined to their profile."""
    coded = _Coded.of(transactions)
    return _user_features(coded, coded.pairs(), users, products)


def item_features(transactions: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Popularity, buyers, revenue and repeat-buying per product (zeros for products nobody bought)."""
    coded = _Coded.of(transactions)
    return _item_features(coded, coded.pairs(), products)
