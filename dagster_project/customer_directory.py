"""The customer list a model carries: every known customer with purchases, spend and last purchase, and search.

Built once per loaded model from its `user_profiles`, so the app can list and search customers from
the model file alone (Dagster down or not). Imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# The customer list: always these, plus email and segment when the shop's export has them.
CUSTOMER_COLUMNS = ["user_id", "name", "email", "country", "segment", "purchases", "spend", "last_purchase"]
OPTIONAL_CUSTOMER_COLUMNS = {"email", "segment"}


def _missing_column(column: str, rows: int) -> pd.Series:
    """A customer-list column the profiles lack: no purchases, no spend, no time, no text."""
    if column == "purchases":
        return pd.Series(np.zeros(rows, dtype=np.int64))
    if column == "spend":
        return pd.Series(np.zeros(rows))
    if column == "last_purchase":
        return pd.Series(pd.NaT, index=range(rows), dtype="datetime64[ns, UTC]")
    return pd.Series(pd.NA, index=range(rows), dtype="string")


def customer_columns(profiles: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The customer list's columns of the profiles at `rows` (positions; every profile when None), in that order."""
    picked = profiles if rows is None else profiles.iloc[rows]
    frame = pd.DataFrame({"user_id": pd.array(picked.index, dtype="string")})
    for column in CUSTOMER_COLUMNS[1:]:
        if column in picked:
            values = picked[column]
            frame[column] = values.array if column == "last_purchase" else values.to_numpy()
        elif column not in OPTIONAL_CUSTOMER_COLUMNS:
            frame[column] = _missing_column(column, len(frame))
    frame["purchases"] = frame["purchases"].fillna(0).astype("int64")
    return frame


def customer_order(profiles: pd.DataFrame) -> np.ndarray:
    """Positions in `profiles` of the customers in the customer list's order (buyers first, most purchases first),
    without making the list (its search texts cost more than the order at a million customers)."""
    if "purchases" not in profiles:
        return np.arange(len(profiles))
    return np.argsort(-profiles["purchases"].fillna(0).astype("int64").to_numpy(), kind="stable")


@dataclass(frozen=True)
class CustomerDirectory:
    """Every known customer, buyers first (most purchases first), and their names and e-mails lower-cased."""

    frame: pd.DataFrame
    search_text: list[pa.Array]

    @classmethod
    def from_profiles(cls, profiles: pd.DataFrame) -> CustomerDirectory:
        frame = customer_columns(profiles)
        frame = frame.iloc[np.argsort(-frame["purchases"].to_numpy(), kind="stable")].reset_index(drop=True)
        search_text = [  # lower-cased once, so a search is a plain substring scan
            pc.utf8_lower(pa.array(frame[c].astype("string"), type=pa.large_string(), from_pandas=True))
            for c in ("name", "email")
            if c in frame
        ]
        return cls(frame, search_text)

    def search(self, text: str, key: str, limit: int) -> tuple[pd.DataFrame, int]:
        """Customers whose id equals `key`, or whose name or e-mail contains `text` (case-insensitive).

        The exact id first, then in list order; at most `limit` rows, and how many matched in all.
        """
        exact = (self.frame["user_id"] == key).to_numpy(dtype=bool, na_value=False)
        found = exact.copy()
        for haystack in self.search_text:
            contains = pc.fill_null(pc.match_substring(haystack, text.lower()), False)
            found |= contains.to_numpy(zero_copy_only=False)
        rows = np.concatenate([np.flatnonzero(exact), np.flatnonzero(found & ~exact)])
        return self.frame.iloc[rows[:limit]].reset_index(drop=True), int(rows.size)
