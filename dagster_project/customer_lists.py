"""Every customer's recommendations as one data product: top-N new products and top-N "buy again".

For each known customer: the new-products list (`list="new"`, what `recommend(user)` shows) and the
buy-again list (`list="buy_again"`, what `recommend(user, exclude_purchased=False)` shows: their own
favourites blended with new suggestions), with rank, score, reason, the `because` products and the
explanation in words. Customers without purchases get the best-sellers, reason "popular".

The lists are built in batches by `list_building` (the same rows `recommend()` gives, far faster
than one call per customer) and stored as row groups of one Parquet file that replaces the previous
one only when complete (fileio.atomic_path): readers see the old lists or the new ones, never half.
After a model update with new purchases only, `update_for_model` builds again only the lists of the customers
who bought and copies every other customer's rows from the stored file (list_update): the same file.
This module is the data product's interface: where it lives, reading it, summarising it, CSV.

Imports no Dagster: the asset, the app and the tests use these functions.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from dagster_project import list_update
from dagster_project.list_building import (  # noqa: F401  (part of this module's interface)
    BLOCK_USERS,
    CATALOGUE_KEY,
    COLUMNS,
    LIST_LENGTH,
    LISTS,
    SCHEMA,
    build,
    catalogue_counts,
    write,
)
from dagster_project.recommender import RecommenderModel

FOLDER = "user_recommendations"
FILE_NAME = "user_recommendations.parquet"


def dataset_path(storage_dir: Path) -> Path:
    """Where the customer lists live under a storage folder."""
    return Path(storage_dir) / FOLDER / FILE_NAME


def write_for_model(model: RecommenderModel, storage_dir: Path, n: int = LIST_LENGTH) -> Path:
    """Compute and store every customer's lists from `model` under `storage_dir`.

    Blocks of customers are scored on two threads of one BLAS thread each, and Parquet is encoded on a
    third (1M: 7.7 s to 4.7 s wall, the file byte for byte the same); BLAS's own threads on top of ours
    mostly waited for each other (they doubled the CPU time and the wall time on the 1M set).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return write(build(model, n), dataset_path(storage_dir), catalogue_counts(model), list_update.lineage(model, n))


def update_for_model(
    model: RecommenderModel, storage_dir: Path, user_ids: Iterable[object], n: int = LIST_LENGTH
) -> Path:
    """Store what `write_for_model(model, storage_dir, n)` would, building again only some customers' lists.

    For a model updated with new purchases (its products' side as trained, `model.card.updates` counting the
    updates): `user_ids` are the customers whose purchases (or name, e-mail) changed since the model the stored
    lists came from, new customers included. Every other customer's rows are copied from the stored file
    (list_update). Without stored lists, or with lists of another trained model or of an update before the
    previous one, every customer's lists are written. Atomic as `write_for_model`: readers see the old file or
    the new one.
    """
    from threadpoolctl import threadpool_limits

    path = dataset_path(storage_dir)
    with threadpool_limits(limits=1, user_api="blas"):
        if list_update.update(model, path, user_ids, n, catalogue_counts(model)) is None:
            write(build(model, n), path, catalogue_counts(model), list_update.lineage(model, n))
    return path


def stored_relation(model: RecommenderModel, storage_dir: Path, n: int = LIST_LENGTH) -> str:
    """How the stored lists stand to `model`: "current" (made from this very model), "previous" (from the model
    it updated: `update_for_model` builds on them), or "other" (none, or another model's: a full write)."""
    stored, current = list_update.stored_lineage(dataset_path(storage_dir)), list_update.lineage(model, n)
    if stored == current:
        return "current"
    return "previous" if list_update.builds_on(stored, current) else "other"


def read(storage_dir: Path, columns: list[str] | None = None, filters: list | None = None) -> pd.DataFrame:
    """The stored lists (optionally some columns, or Arrow `filters` such as [("user_id", "==", "1001")]).

    `because` holds lists of product ids. `attrs["catalogue"]` is the catalogue the lists came from.
    """
    path = dataset_path(storage_dir)
    if not path.is_file():
        raise FileNotFoundError(f"No customer lists at {path}: run the complete pipeline to make them.")
    table = pq.read_table(path, columns=columns, filters=filters)
    frame = table.to_pandas()
    if "because" in frame:
        frame["because"] = table.column("because").to_pylist()
    frame.attrs["catalogue"] = _catalogue_of(table.schema)
    return frame


def preview(storage_dir: Path, rows: int = 5) -> pd.DataFrame:
    """The first rows of the stored lists, read from the first row group only."""
    with pq.ParquetFile(dataset_path(storage_dir)) as file:
        return file.read_row_group(0).slice(0, rows).to_pandas() if file.num_row_groups else pd.DataFrame()


def _catalogue_of(schema: pa.Schema) -> dict:
    raw = (schema.metadata or {}).get(CATALOGUE_KEY)
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


SUMMARY_COLUMNS = ["user_id", "list", "product_id", "product_name", "category", "reason"]


def _codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and their values (free for the categorical columns summary reads)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), values.cat.categories
    codes, uniques = pd.factorize(values)
    return codes, pd.Index(uniques)


def _at(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    codes, uniques = _codes(values)
    return np.asarray(uniques)[codes[rows]]


def _equals(values: pd.Series, value: str) -> np.ndarray:
    codes, uniques = _codes(values)
    return codes == uniques.get_loc(value) if value in uniques else np.zeros(len(values), dtype=bool)


def summary(source: pd.DataFrame | Path | str, top: int = 10) -> dict:
    """What the lists recommend across all customers.

    Keys: customers, rows, products_recommended, catalogue_products, coverage (share of the catalogue
    recommended to anyone, re-buys included), new_coverage (the same on the new-products lists alone:
    the variety customers see among products they have not bought), fallback_share (share of customers
    given best-sellers for want of purchases), top_products (product_id, name, category, customers),
    coverage_by_category (category, products_recommended, products_in_catalogue, share), top_categories
    (category, recommendations, share; on the new-products list).
    """
    if isinstance(source, pd.DataFrame):
        frame, catalogue = source, source.attrs.get("catalogue") or {}
    else:
        path = dataset_path(Path(source))
        if not path.is_file():
            raise FileNotFoundError(f"No customer lists at {path}: run the complete pipeline to make them.")
        table = pq.read_table(path, columns=SUMMARY_COLUMNS, read_dictionary=SUMMARY_COLUMNS)
        frame, catalogue = table.to_pandas(), _catalogue_of(table.schema)
    users, user_ids = _codes(frame["user_id"])
    products, product_ids = _codes(frame["product_id"])
    customers = int(np.count_nonzero(np.bincount(users, minlength=len(user_ids))))
    first = np.full(len(product_ids), -1)
    first[products[::-1]] = np.arange(len(products))[::-1]  # each product's first row
    shown = np.flatnonzero(first >= 0)
    per_product = pd.DataFrame(
        {
            "product_id": np.asarray(product_ids)[shown],
            "name": _at(frame["product_name"], first[shown]),
            "category": _at(frame["category"], first[shown]),
        }
    )
    pairs = sp.csr_matrix((np.ones(len(users), dtype=np.int8), (users, products)), (len(user_ids), len(product_ids)))
    per_product["customers"] = np.diff(pairs.tocsc().indptr)[shown]  # distinct customers per product
    top_products = (
        per_product.sort_values(["customers", "product_id"], ascending=[False, True]).head(top).reset_index(drop=True)
    )
    top_products = top_products.astype({"product_id": str, "name": str, "category": str, "customers": "int64"})
    in_catalogue = pd.Series(catalogue.get("by_category") or {}, dtype="int64")
    recommended = per_product["category"].astype(str).value_counts()
    if in_catalogue.empty:  # a frame without its catalogue: measure against what it shows
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
    new = _equals(frame["list"], "new")
    categories = pd.Series(_at(frame["category"], np.flatnonzero(new))).value_counts().head(top)
    top_categories = pd.DataFrame(
        {
            "category": categories.index.astype(str),
            "recommendations": categories.to_numpy(),
            "share": categories.to_numpy() / max(int(new.sum()), 1),
        }
    )
    catalogue_size = int(catalogue.get("products") or in_catalogue.sum())
    new_products = np.unique(products[new]).size
    fallback = np.count_nonzero(np.bincount(users[_equals(frame["reason"], "popular")], minlength=len(user_ids)))
    return {
        "customers": customers,
        "rows": int(len(frame)),
        "products_recommended": int(shown.size),
        "catalogue_products": catalogue_size,
        "coverage": shown.size / catalogue_size if catalogue_size else 0.0,
        "new_coverage": new_products / catalogue_size if catalogue_size else 0.0,
        "fallback_share": fallback / customers if customers else 0.0,
        "top_products": top_products,
        "coverage_by_category": by_category,
        "top_categories": top_categories,
    }


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The lists as CSV (UTF-8), `because` as product ids joined by '; ', for spreadsheets and mail tools."""
    out = frame.copy()
    if "because" in out:
        out["because"] = ["; ".join(map(str, ids)) if ids is not None else "" for ids in out["because"]]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
