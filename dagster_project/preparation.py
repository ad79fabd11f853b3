"""Preparation: from validated raw tables to clean, typed, encoded tables.

Users and products with a fixable defect are kept with the bad value cleared (an invalid email or
age becomes missing); rows that cannot be used are dropped and counted by the rule that rejected them.
Transactions are dropped when any rule rejects them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contract import (
    EMAIL_PATTERN,
    MAX_AGE,
    MAX_PRICE,
    MIN_AGE,
    NON_PRODUCT_PATTERN,
    is_in,
    parse_timestamps,
    positions_in,
    to_number,
)
from dagster_project.ingest import ROW_COLUMN, SOURCE_COLUMN
from dagster_project.validation import Frames, failure_masks, plausible_times

GENDERS = {"f": "F", "female": "F", "w": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}


def _failing(masks: pd.DataFrame, rules: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows failing any of `rules`; each counted once, under the first rule it fails."""
    applicable = [r for r in rules if r in masks]
    if not applicable:
        return np.zeros(len(masks), dtype=bool), {}
    failing = masks[applicable]
    dropped = failing.any(axis=1).to_numpy()
    first = failing[dropped].idxmax(axis=1).value_counts()
    return dropped, {rule: int(n) for rule, n in first.items()}


def _drop(frame: pd.DataFrame, masks: pd.DataFrame, rules: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows failing any of `rules`; count each dropped row once, under the first rule it fails."""
    dropped, counts = _failing(masks, rules)
    return (frame.loc[~dropped] if counts else frame), counts


def encode(values: pd.Series) -> pd.Series:
    """Stable integer codes for a categorical column (sorted categories; missing -> -1)."""
    return pd.Categorical(values).codes.astype("int32")


def min_max(values: pd.Series) -> pd.Series:
    lo, hi = values.min(), values.max()
    if pd.isna(lo) or hi == lo:
        return pd.Series(np.where(values.notna(), 0.0, np.nan), index=values.index)
    return (values - lo) / (hi - lo)


def _clean(values: pd.Series) -> pd.Series:
    """Text without surrounding blanks; blank -> missing."""
    return values.astype("string").str.strip().mask(lambda s: s == "")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return _clean(frame[column])


def dates_judged_by_today(frames: Frames) -> int:
    """How many customers' sign-up dates are left out only for being later than tomorrow: what a preparation on a
    later day would keep. Prepared customers are used again on later days only when this is 0."""
    users = frames.users
    if "signup_date" not in users:
        return 0
    signup = parse_timestamps(users["signup_date"])
    return int(((signup >= frames.limits.earliest) & ~plausible_times(signup, frames.limits)).sum())


def prepare_users(frames: Frames) -> tuple[pd.DataFrame, dict[str, int]]:
    raw = frames.users
    users, dropped = _drop(raw, failure_masks(frames, "users"), ["user_id_present", "user_id_unique"])
    out = pd.DataFrame({"user_id": users["user_id"].astype("string")})
    out["name"] = _text(users, "name")
    email = _text(users, "email").str.lower()
    out["email"] = email.where(email.str.match(EMAIL_PATTERN).fillna(False))
    age = to_number(users["age"]) if "age" in users else pd.Series(np.nan, index=users.index)
    out["age"] = age.where((age >= MIN_AGE) & (age <= MAX_AGE)).round().astype("Int64")
    gender = _text(users, "gender").str.lower()
    out["gender"] = gender.map(GENDERS).fillna(gender.where(gender.isna(), "Other")).fillna("Unknown")
    out["country"] = _text(users, "country").str.upper().fillna("Unknown")
    signup = (
        parse_timestamps(users["signup_date"])
        if "signup_date" in users
        else pd.Series(pd.NaT, index=users.index, dtype="datetime64[ns, UTC]")
    )
    out["signup_date"] = signup.where(plausible_times(signup, frames.limits))
    out["gender_code"] = encode(out["gender"])
    out["country_code"] = encode(out["country"])
    out["age_scaled"] = min_max(out["age"].astype("float64"))
    extra = [c for c in users.columns if c not in out.columns and c not in (SOURCE_COLUMN, ROW_COLUMN)]
    return pd.concat([out, users[extra]], axis=1).reset_index(drop=True), dropped


def prepare_products(
    frames: Frames, non_product_pattern: str = NON_PRODUCT_PATTERN
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unique, named merchandise; lines whose name or code matches `non_product_pattern` are dropped."""
    raw = frames.products
    products, dropped = _drop(
        raw, failure_masks(frames, "products"), ["product_id_present", "product_id_unique", "product_name_present"]
    )
    if non_product_pattern:

        def matches(values: pd.Series) -> np.ndarray:
            """RE2 through Arrow: linear time whatever the pattern (one that RE2 cannot run is refused)."""
            text = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
            found = pc.match_substring_regex(text, non_product_pattern)
            return pc.fill_null(found, False).to_numpy(zero_copy_only=False)

        not_merchandise = matches(_text(products, "name")) | matches(products["product_id"])
        if not_merchandise.any():
            dropped["not_merchandise"] = int(not_merchandise.sum())
            products = products.loc[~not_merchandise]
    out = pd.DataFrame({"product_id": products["product_id"].astype("string"), "name": _text(products, "name")})
    out["category"] = _text(products, "category").fillna("Uncategorized")
    out["brand"] = _text(products, "brand").fillna("Unknown")
    price = to_number(products["price"]) if "price" in products else pd.Series(np.nan, index=products.index)
    out["price"] = price.where((price > 0) & (price <= MAX_PRICE))
    out["category_code"] = encode(out["category"])
    out["brand_code"] = encode(out["brand"])
    out["price_scaled"] = min_max(np.log1p(out["price"]))
    extra = [c for c in products.columns if c not in out.columns and c not in (SOURCE_COLUMN, ROW_COLUMN)]
    return pd.concat([out, products[extra]], axis=1).reset_index(drop=True), dropped


def prepare_transactions(
    frames: Frames, products: pd.DataFrame, consume: bool = False
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the transactions every rule accepts; amounts use the product price when unit_price is absent.

    `consume`: each raw column is dropped from `frames.transactions` once its prepared column is made (for a
    caller that read the table for this alone): one copy of the purchases held instead of two (10M: ~0.8 GB).
    """
    masks = failure_masks(frames, "transactions").copy()  # the shared masks stay the rules' own
    masks["product_excluded"] = (
        frames.transactions["product_id"].notna()
        & ~is_in(frames.transactions["product_id"], products["product_id"])
        & ~masks.get("product_known", False)
    )
    dropped, counts = _failing(masks, list(masks.columns))
    raw = frames.transactions
    # Rows are picked once, already in time order: no copy of the raw rows kept, no sorted second copy.
    kept = np.flatnonzero(~dropped)
    timestamp = parse_timestamps(raw["timestamp"].iloc[kept])
    if consume:
        del raw["timestamp"]
    order = np.argsort(timestamp.to_numpy(dtype="datetime64[ns]"), kind="stable")
    rows = kept[order]

    def column(name: str) -> pd.Series:
        values = raw[name].iloc[rows].reset_index(drop=True)
        if consume:
            del raw[name]
        return values

    out = pd.DataFrame(
        {
            "transaction_id": _clean(column("transaction_id"))
            if "transaction_id" in raw
            else pd.Series(pd.NA, index=range(len(rows)), dtype="string"),
            "user_id": column("user_id").astype("string"),
            "product_id": column("product_id").astype("string"),
            "timestamp": timestamp.iloc[order].reset_index(drop=True),
        }
    )
    quantity = to_number(column("quantity")).fillna(1) if "quantity" in raw else pd.Series(1, index=out.index)
    out["quantity"] = quantity.astype("int64")
    at = positions_in(out["product_id"], products["product_id"])
    list_price = np.append(products["price"].to_numpy(dtype="float64", na_value=np.nan), np.nan)[at]
    unit_price = to_number(column("unit_price")) if "unit_price" in raw else pd.Series(np.nan, index=out.index)
    out["unit_price"] = unit_price.fillna(pd.Series(list_price, index=out.index))
    out["amount"] = out["quantity"] * out["unit_price"]
    return out, counts
