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


def user_features(transactions: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Purchase behaviour per known user (zeros for users who bought nothing), joined to their profile."""
    as_of = transactions["timestamp"].max()
    grouped = transactions.groupby("user_id", observed=True)
    stats = grouped.agg(
        transactions=("quantity", "size"),
        products_bought=("product_id", "nunique"),
        total_quantity=("quantity", "sum"),
        total_spend=("amount", "sum"),
        **PURCHASE_SPAN,
    )
    stats["avg_order_value"] = stats["total_spend"] / stats["transactions"]
    stats["recency_days"] = (as_of - stats["last_purchase"]).dt.total_seconds() / 86400.0
    with_category = transactions[["user_id", "product_id"]].merge(products[["product_id", "category"]], on="product_id")
    favourite = (
        with_category.groupby(["user_id", "category"], observed=True)
        .size()
        .reset_index(name="n")
        .sort_values(["user_id", "n", "category"], ascending=[True, False, True])
        .drop_duplicates("user_id")
        .set_index("user_id")["category"]
    )
    stats["favourite_category"] = favourite
    profile = users[["user_id", "age", "gender", "country", "gender_code", "country_code", "age_scaled"]]
    out = profile.merge(stats.reset_index(), on="user_id", how="left")
    counts = ["transactions", "products_bought", "total_quantity"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["total_spend"] = out["total_spend"].fillna(0.0)
    return out


def item_features(transactions: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Popularity, buyers, revenue and repeat-buying per product (zeros for products nobody bought)."""
    per_pair = transactions.groupby(["product_id", "user_id"], observed=True).size()
    buyers = per_pair.groupby(level="product_id").size()
    repeat_buyers = (per_pair > 1).groupby(level="product_id").sum()
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
