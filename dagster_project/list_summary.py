"""What the customer lists recommend across all customers, from parts that add up over groups of customers.

A summary (customers, coverage, the most recommended products, categories) is made from `Parts`: counts that
add up over disjoint sets of customers (per product: distinct customers and customers with it on the new list;
per category: new-list rows; customers, rows, customers given best-sellers). So the stored lists' summary after
an update is the base file's parts, minus those of the changed customers' old rows, plus those of their new
rows (list_update), with no need to read the whole base again: and it equals the summary of a full write,
because both are made by `summary_of` from equal parts.

Imports no Dagster; `customer_lists.summary` is the interface.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

PRODUCT_COLUMNS = ["product_id", "name", "category", "customers", "new"]
SUMMARY_COLUMNS = ["user_id", "list", "product_id", "product_name", "category", "reason"]  # what the parts read


@dataclass(frozen=True)
class Parts:
    """Counts of some customers' lists that add up over disjoint sets of customers."""

    customers: int
    rows: int
    fallback: int  # customers given the best-sellers (reason "popular")
    new_rows: int  # rows on the new-products list
    products: pd.DataFrame  # product_id, name, category, customers (distinct), new (customers, new list)
    categories: pd.Series  # new-list rows per category (index: category)

    def combined(self, other: Parts, sign: int = 1) -> Parts:
        """These parts plus (sign 1) or minus (sign -1) the parts of other customers."""
        mine, theirs = self.products.set_index("product_id"), other.products.set_index("product_id")
        counts = mine[["customers", "new"]].add(sign * theirs[["customers", "new"]], fill_value=0)
        labels = mine[["name", "category"]].combine_first(theirs[["name", "category"]])
        products = labels.join(counts.astype("int64"))
        products = products[(products["customers"] != 0) | (products["new"] != 0)]
        categories = self.categories.add(sign * other.categories, fill_value=0).astype("int64")
        return Parts(
            self.customers + sign * other.customers,
            self.rows + sign * other.rows,
            self.fallback + sign * other.fallback,
            self.new_rows + sign * other.new_rows,
            _products(products.rename_axis("product_id").reset_index()),
            _categories(categories[categories != 0]),
        )

    def to_json(self) -> str:
        products = {c: self.products[c].tolist() for c in PRODUCT_COLUMNS}
        counts = {"category": self.categories.index.tolist(), "rows": self.categories.tolist()}
        fields = {"customers": self.customers, "rows": self.rows, "fallback": self.fallback}
        return json.dumps({**fields, "new_rows": self.new_rows, "products": products, "categories": counts})

    @classmethod
    def from_json(cls, text: str | bytes) -> Parts:
        """Parts from `to_json`; ValueError when the text is not that."""
        try:
            raw = json.loads(text)
            categories = pd.Series(raw["categories"]["rows"], index=raw["categories"]["category"], dtype="int64")
            products = pd.DataFrame({c: raw["products"][c] for c in PRODUCT_COLUMNS})
            counts = [int(raw[k]) for k in ("customers", "rows", "fallback", "new_rows")]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a summary of customer lists ({error})") from None
        return cls(*counts, _products(products), _categories(categories))


def _products(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"product_id": object, "name": object, "category": object, "customers": "int64"})
    return frame.astype({"new": "int64"}).sort_values("product_id").reset_index(drop=True)[PRODUCT_COLUMNS]


def _categories(series: pd.Series) -> pd.Series:
    series = series.astype("int64")
    series.index = pd.Index(series.index.astype(str), dtype=object, name="category")
    return series.sort_index().rename("rows")


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """A column as integer codes (-1 for nulls) and the values they stand for (Arrow's hashing, no Python
    strings: a column read as dictionaries keeps them, unified across row groups; another is encoded whole)."""
    if not pa.types.is_dictionary(column.type):
        column = pa.chunked_array([pc.dictionary_encode(column.combine_chunks())])
    chunks = pa.table({"c": column}).unify_dictionaries()["c"].chunks
    if not chunks:
        return np.zeros(0, dtype=np.int32), pa.array([], pa.string())
    indices = [c.indices.fill_null(-1) if c.null_count else c.indices for c in chunks]
    codes = np.concatenate([i.to_numpy(zero_copy_only=False) for i in indices]).astype(np.int32, copy=False)
    return codes, chunks[0].dictionary


def _distinct_per_column(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """For each column (product): how many distinct rows (customers) have it."""
    pairs = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape)
    return np.diff(pairs.tocsc().indptr)


def _is(column: tuple[np.ndarray, pa.Array], value: str) -> np.ndarray:
    codes, values = column
    found = values.index(value).as_py() if len(values) else -1
    return codes == found if found >= 0 else np.zeros(len(codes), dtype=bool)


def _labels(column: tuple[np.ndarray, pa.Array], rows: np.ndarray) -> list:
    codes, values = column
    picked = codes[rows]
    out = values.take(pa.array(np.maximum(picked, 0))).to_pylist() if len(values) else [None] * len(rows)
    return [None if code < 0 else value for code, value in zip(picked, out)]


def parts_of(source: pd.DataFrame | pa.Table) -> Parts:
    """The parts of some customers' lists (columns user_id, list, product_id, product_name, category, reason; the
    customers' every row)."""
    if isinstance(source, pd.DataFrame):
        source = pa.Table.from_pandas(source[SUMMARY_COLUMNS], preserve_index=False)
    table = source
    return _parts(lambda name: _encoded(table[name]), table.num_rows)


def parts_of_file(source: object) -> Parts:
    """The parts of a whole lists file, read one column at a time as dictionaries (at 19.7M rows: a few hundred MB
    of codes at once, not the columns side by side)."""
    file = pq.ParquetFile(source, read_dictionary=SUMMARY_COLUMNS)
    return _parts(lambda name: _encoded(file.read(columns=[name])[name]), file.metadata.num_rows)


def _parts(column: Callable[[str], tuple[np.ndarray, pa.Array]], rows: int) -> Parts:
    users, user_ids = column("user_id")
    products, product_ids = column("product_id")
    new = _is(column("list"), "new")
    popular = _is(column("reason"), "popular")
    shape = (len(user_ids), len(product_ids))
    first = np.full(len(product_ids), -1)
    first[products[::-1]] = np.arange(len(products))[::-1]  # each product's first row
    shown = np.flatnonzero(first >= 0)
    customers = _distinct_per_column(users, products, shape)[shown]
    on_new = _distinct_per_column(users[new], products[new], shape)[shown]
    counts = {
        "customers": int(np.count_nonzero(np.bincount(users, minlength=len(user_ids)))),
        "fallback": int(np.count_nonzero(np.bincount(users[popular], minlength=len(user_ids)))),
    }
    del users, products, popular
    category = column("category")
    category_codes, category_values = category
    counted = np.bincount(category_codes[new & (category_codes >= 0)], minlength=len(category_values))
    present = np.flatnonzero(counted)
    categories = pd.Series(counted[present], index=category_values.take(pa.array(present)).to_pylist())
    per_product = pd.DataFrame(
        {
            "product_id": product_ids.take(pa.array(shown)).to_pylist() if len(shown) else [],
            "name": _labels(column("product_name"), first[shown]),
            "category": _labels(category, first[shown]),
            "customers": customers,
            "new": on_new,
        }
    )
    return Parts(
        customers=counts["customers"],
        rows=int(rows),
        fallback=counts["fallback"],
        new_rows=int(new.sum()),
        products=_products(per_product),
        categories=_categories(categories),
    )


def summary_of(parts: Parts, catalogue: dict, top: int = 10) -> dict:
    """The summary `customer_lists.summary` gives, from the lists' parts and the catalogue they came from."""
    per_product = parts.products[parts.products["customers"] > 0]
    top_products = (
        per_product[["product_id", "name", "category", "customers"]]
        .sort_values(["customers", "product_id"], ascending=[False, True])
        .head(top)
        .reset_index(drop=True)
    )
    top_products = top_products.astype({"product_id": str, "name": str, "category": str, "customers": "int64"})
    in_catalogue = pd.Series(catalogue.get("by_category") or {}, dtype="int64")
    recommended = per_product["category"].astype(str).value_counts()
    if in_catalogue.empty:  # lists without their catalogue: measure against what they show
        in_catalogue = recommended
    by_category = (
        pd.DataFrame({"products_recommended": recommended, "products_in_catalogue": in_catalogue})
        .fillna(0)
        .astype("int64")
        .rename_axis("category")
        .reset_index()
    )
    known = by_category["products_in_catalogue"].where(by_category["products_in_catalogue"] > 0)
    by_category["share"] = (by_category["products_recommended"] / known).fillna(0.0)
    by_category = by_category.sort_values(["share", "category"], ascending=[False, True]).reset_index(drop=True)
    # ties in the order of their names (not of their first row: the rows' order is not part of the lists)
    counts = parts.categories.rename_axis("category").reset_index()
    counts = counts.sort_values(["rows", "category"], ascending=[False, True]).head(top)
    top_categories = pd.DataFrame(
        {
            "category": counts["category"].astype(str).to_numpy(),
            "recommendations": counts["rows"].to_numpy(dtype=np.int64),
            "share": counts["rows"].to_numpy() / max(parts.new_rows, 1),
        }
    )
    shown = len(per_product)
    catalogue_size = int(catalogue.get("products") or in_catalogue.sum())
    new_products = int((per_product["new"] > 0).sum())
    customers = parts.customers
    return {
        "customers": customers,
        "rows": parts.rows,
        "products_recommended": shown,
        "catalogue_products": catalogue_size,
        "coverage": shown / catalogue_size if catalogue_size else 0.0,
        "new_coverage": new_products / catalogue_size if catalogue_size else 0.0,
        "fallback_share": parts.fallback / customers if customers else 0.0,
        "top_products": top_products,
        "coverage_by_category": by_category,
        "top_categories": top_categories,
    }
