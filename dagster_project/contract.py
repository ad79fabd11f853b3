"""The input contract: which files, which columns, and how values are read.

Ids may be numeric or text in the exports; everywhere after reading they are trimmed text, and a
numeric id written as a float (`17850.0`) is the same id as `17850`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class EntitySpec:
    name: str
    pattern: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    id_columns: tuple[str, ...]


USERS = EntitySpec("users", "users*.csv", ("user_id",),
                   ("name", "email", "age", "gender", "country", "signup_date"), ("user_id",))
PRODUCTS = EntitySpec("products", "products*.json", ("product_id", "name"),
                      ("category", "brand", "price"), ("product_id",))
TRANSACTIONS = EntitySpec("transactions", "transactions*.csv", ("user_id", "product_id", "timestamp"),
                          ("transaction_id", "quantity", "unit_price"), ("transaction_id", "user_id", "product_id"))
ENTITIES = (USERS, PRODUCTS, TRANSACTIONS)

MIN_AGE, MAX_AGE = 13, 110
MAX_QUANTITY = 10_000
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def normalize_ids(values: pd.Series) -> pd.Series:
    """Trimmed text ids; '17850.0' becomes '17850'; blanks become missing."""
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "")


def id_key(value: object) -> str:
    """The text form of one id as the pipeline stores it (for ids given as int or str)."""
    return normalize_ids(pd.Series([value])).iloc[0] if value is not None else ""


def to_number(values: pd.Series) -> pd.Series:
    """Numbers, with anything unparseable as NaN (the checks count those)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype("float64")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from ISO 8601 text (fast path) or other common formats; unparseable -> NaT.

    Naive times are taken as UTC; times with an offset are converted to UTC.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    retry = parsed.isna() & text.notna() & (text != "")
    if retry.any():
        parsed.loc[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce", utc=True, dayfirst=False)
    return parsed
