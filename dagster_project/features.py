"""Features: per user, per item, and the user x item interaction table.

The interaction table is long (one row per user and product bought) rather than a matrix on disk: it
is what Parquet stores well, and the model turns it into a scipy.sparse matrix in one call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# When a customer (or a customer-product pair) was first and last seen buying.
PURCHASE_SPAN = {"first_purchase": ("timestamp", "min"), "last_purchase": ("timestamp", "max")}


def interaction_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, product): purchases, quantity, spend, first/last time, and a confidence."""
    grouped = transactions.groupby(["user_id", "product_id"], observed=True, sort=False)
    table = grouped.agg(
        purchases=("quantity", "size"), quantity=("quantity", "sum"), spend=("amount", "sum"), **PURCHASE_SPAN
    ).reset_index()
    table["confidence"] = np.log1p(table["purchases"].to_numpy(dtype="float64"))
    return table


def _favourite_category(transactions: pd.DataFrame, products: pd.DataFrame) -> pd.Series:
    """Per user, the category they bought most often (ties: the first category by name), on integer codes."""
    categories = pd.Categorical(products["category"])
    position = pd.Index(products["product_id"]).get_indexer(transactions["product_id"])
    known = position >= 0
    users, user_ids = pd.factorize(transactions["user_id"].to_numpy()[known])
    category = categories.codes[position[known]]
    width = max(len(categories.categories), 1) + 1  # codes run from -1 (no category) up
    counts = pd.Series(users.astype(np.int64) * width + (category + 1)).value_counts(sort=False)
    keys, n = counts.index.to_numpy(), counts.to_numpy()
    user, code = keys // width, keys % width - 1
    order = np.lexsort((code, -n, user))  # per user: most bought first, then the category first by name
    first = order[np.r_[True, user[order][1:] != user[order][:-1]]] if len(order) else order
    return pd.Series(
        categories.categories[code[first]], index=pd.Index(user_ids[user[first]], name="user_id"), dtype="string"
    )


def user_features(
    transactions: pd.DataFrame,
    users: pd.DataFrame,
    products: pd.DataFrame,
    interactions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Purchase behaviour per known user (zeros for users who bought nothing), joined to their profile.

    `interactions` (the `interaction_table` of the same transactions) saves counting products per user again.
    """
    as_of = transactions["timestamp"].max()
    grouped = transactions.groupby("user_id", observed=True)
    stats = grouped.agg(
        transactions=("quantity", "size"),
        total_quantity=("quantity", "sum"),
        total_spend=("amount", "sum"),
        **PURCHASE_SPAN,
    )
    pairs = interactions if interactions is not None else interaction_table(transactions)
    stats.insert(1, "products_bought", pairs.groupby("user_id", observed=True).size())
    stats["avg_order_value"] = stats["total_spend"] / stats["transactions"]
    stats["recency_days"] = (as_of - stats["last_purchase"]).dt.total_seconds() / 86400.0
    stats["favourite_category"] = _favourite_category(transactions, products)
    profile = users[["user_id", "age", "gender", "country", "gender_code", "country_code", "age_scaled"]]
    out = profile.merge(stats.reset_index(), on="user_id", how="left")
    counts = ["transactions", "products_bought", "total_quantity"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["total_spend"] = out["total_spend"].fillna(0.0)
    return out


def item_features(
    transactions: pd.DataFrame, products: pd.DataFrame, interactions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Popularity, buyers, revenue and repeat-buying per product (zeros for products nobody bought).

    `interactions` (the `interaction_table` of the same transactions) saves grouping the pairs again.
    """
    pairs = interactions if interactions is not None else interaction_table(transactions)
    per_product = pairs.groupby("product_id", observed=True)
    buyers = per_product.size()
    repeat_buyers = (pairs["purchases"] > 1).groupby(pairs["product_id"], observed=True).sum()
    grouped = transactions.groupby("product_id", observed=True)
    stats = grouped.agg(
        purchases=("quantity", "size"),
        total_quantity=("quantity", "sum"),
        revenue=("amount", "sum"),
        last_purchase=("timestamp", "max"),
    )
    stats["buyers"] = buyers
    stats["repeat_buyer_share"] = repeat_buyers / buyers
    out = products[["product_id", "name", "category", "brand", "price"]].merge(
        stats.reset_index(), on="product_id", how="left"
    )
    counts = ["purchases", "total_quantity", "buyers"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out[["revenue", "repeat_buyer_share"]] = out[["revenue", "repeat_buyer_share"]].fillna(0.0)
    out["popularity_rank"] = out["buyers"].rank(method="min", ascending=False).astype("int64")
    return out.sort_values("popularity_rank", kind="stable").reset_index(drop=True)
