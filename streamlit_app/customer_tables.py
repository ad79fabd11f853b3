"""What the Recommendations page shows, as plain frames and text: the customer list, a customer's lists
with the reason for each product, and the per-customer download.

No Streamlit import: the page draws these, the tests read them.
"""

from __future__ import annotations

import pandas as pd

from streamlit_app.tables import plain

LIST_LIMIT = 200  # rows in the customer list: enough to browse, few enough to draw at once
NO_VALUE = "–"
NO_PURCHASE = "no purchase yet"
SORTS: dict[str, tuple[str, bool]] = {  # label -> (column, ascending)
    "Most spent": ("spend", False),
    "Most purchases": ("purchases", False),
    "Most recent purchase": ("last_purchase", False),
    "Name": ("name", True),
    "Customer id": ("user_id", True),
}
BEST_MATCH = "Best match"  # a search's own order: an exact id first
TEXT_COLUMNS = ("name", "email", "country", "segment")


def sort_customers(customers: pd.DataFrame, sort: str) -> pd.DataFrame:
    """Customers in the chosen order (a search keeps its own order for `BEST_MATCH`); missing values last."""
    if sort not in SORTS or SORTS[sort][0] not in customers:
        return customers
    column, ascending = SORTS[sort]
    key = None
    if column in ("name", "user_id"):
        key = lambda s: s.astype("string").str.lower()  # noqa: E731
    elif column == "last_purchase":
        key = lambda s: pd.to_datetime(s, utc=True, errors="coerce")  # noqa: E731
    return customers.sort_values(column, ascending=ascending, na_position="last", kind="stable", key=key)


def customer_table(customers: pd.DataFrame) -> pd.DataFrame:
    """The customer list as shown: every cell a value a person reads (never "None"), dates as days."""
    out = pd.DataFrame({"user_id": customers["user_id"].astype("string").to_numpy()})
    for column in TEXT_COLUMNS:
        if column in customers:
            text = customers[column].astype("string").str.strip()
            out[column] = text.mask(text.isna() | (text == ""), NO_VALUE).fillna(NO_VALUE).to_numpy()
    out["purchases"] = pd.to_numeric(customers["purchases"], errors="coerce").fillna(0).astype(int).to_numpy()
    out["spend"] = pd.to_numeric(customers["spend"], errors="coerce").fillna(0.0).round(2).to_numpy()
    last = pd.to_datetime(customers["last_purchase"], utc=True, errors="coerce")
    out["last_purchase"] = last.dt.strftime("%Y-%m-%d").fillna(NO_PURCHASE).to_numpy()
    return out


def count_text(shown: int, total: int, query: str = "") -> str:
    """How many customers the list shows, honestly: "50 of 76 — refine your search"."""
    if not query:
        if shown < total:
            return f"Showing {shown:,} of {total:,} customers — search by id, name or e-mail to find the others."
        return f"All {total:,} customers."
    found = f"customer{'s' if total != 1 else ''} match{'es' if total == 1 else ''} '{plain(query)}'"
    if shown < total:
        return f"{shown:,} of {total:,} {found} — refine your search to see the others."
    return f"{total:,} {found}."


def why(recs: pd.DataFrame) -> pd.Series:
    """The reason for each product, in words."""
    if "explanation" in recs:
        return recs["explanation"].astype("string").fillna("").replace("", NO_VALUE)
    return recs["reason"].astype("string").fillna(NO_VALUE)


def list_markdown(recs: pd.DataFrame) -> str:
    """A customer's list as a two-column table (product, why) that wraps on a phone instead of scrolling."""
    lines = ["| # | Product | Why |", "|---:|---|---|"]
    reasons = why(recs)
    for rank, name, category, reason in zip(recs["rank"], recs["name"], recs["category"], reasons):
        detail = f" · {plain(category)}" if isinstance(category, str) and category else ""
        lines.append(f"| {int(rank)} | **{plain(name)}**{detail} | {plain(reason)} |")
    return "\n".join(lines)


def details_frame(recs: pd.DataFrame) -> pd.DataFrame:
    """Every column of a list, for the table view: reasons as text, no empty cells."""
    out = recs.drop(columns=[c for c in ("because", "reason") if c in recs]).copy()
    out.insert(2, "why", why(recs).to_numpy())
    out = out.drop(columns=["explanation"], errors="ignore")
    return readable(out)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Product columns with a word for what is missing (a table would show "None"); prices as text."""
    out = frame.copy()
    for column in ("category", "brand"):
        if column in out:
            out[column] = out[column].astype("string").fillna(NO_VALUE)
    if "price" in out:
        price = pd.to_numeric(out["price"], errors="coerce")
        out["price"] = [NO_VALUE if pd.isna(v) else f"{v:,.2f}" for v in price]
    return out


def customer_download(customer: dict, recs: pd.DataFrame, list_name: str) -> bytes:
    """A customer's list as CSV, each row carrying who it is for (id, name, e-mail) and why."""
    out = recs.rename(columns={"name": "product_name"}).copy()
    if "because" in out:
        out["because"] = [" ".join(map(str, b)) if isinstance(b, list | tuple) else "" for b in out["because"]]
    out.insert(0, "list", list_name)
    for position, (column, value) in enumerate(
        (("user_id", customer.get("user_id")), ("name", customer.get("name")), ("email", customer.get("email")))
    ):
        out.insert(position, column, "" if value is None or pd.isna(value) else str(value))
    return out.to_csv(index=False).encode()


def profile_line(customer: dict) -> str:
    """The facts that tell two customers with one name apart, in one line."""
    parts = [str(customer[c]) for c in ("email", "country", "segment") if _present(customer.get(c))]
    last = pd.to_datetime(customer.get("last_purchase"), utc=True, errors="coerce")
    parts.append(f"last purchase {last:%d %b %Y}" if not pd.isna(last) else NO_PURCHASE)
    return " · ".join(plain(p) for p in parts)


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and str(value).strip() != ""
