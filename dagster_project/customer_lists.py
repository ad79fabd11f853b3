"""Every customer's recommendations as one data product: top-N new products and top-N "buy again".

For each known customer: the new-products list (`list="new"`, what `recommend(user)` shows) and the
buy-again list (`list="buy_again"`, what `recommend(user, exclude_purchased=False)` shows: their own
favourites blended with new suggestions), with rank, score, reason, the `because` products and the
explanation in words. Customers without purchases get the best-sellers, reason "popular".

The lists are built in batches by `list_building` (the same rows `recommend()` gives, far faster
than one call per customer) and stored as row groups of one Parquet file, the base, that replaces the
previous one only when complete (fileio.atomic_path). After a model update with new purchases only,
`update_for_model` builds again only the lists of the customers who bought and stores them as a layer
beside the base (list_update, list_layers): rewriting the base would re-encode every row, as buyers move
in its order. Every reader here combines base and layer and gives what a full write gives (rows in
another order: the base's without the changed customers, then the layer's); readers see the old lists or
the new ones, never half. This module is the data product's interface: where it lives, reading it,
summarising it (list_summary), CSV and Parquet downloads.

Imports no Dagster: the asset, the app and the tests use these functions.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dagster_project import list_building, list_layers, list_summary, list_update
from dagster_project.fileio import sha256_of, write_json
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

FOLDER = list_layers.FOLDER
FILE_NAME = list_layers.BASE_NAME
SUMMARY_COLUMNS = list_layers.SUMMARY_COLUMNS
DamagedLists = list_layers.DamagedLists


def dataset_path(storage_dir: Path) -> Path:
    """Where the customer lists' base file lives under a storage folder (a full write's whole lists)."""
    return list_layers.base_path(storage_dir)


def layer_path(storage_dir: Path) -> Path:
    """Where the layer of customers changed since the base lives (there after an update only)."""
    return list_layers.layer_path(storage_dir)


def folder_path(storage_dir: Path) -> Path:
    """The folder of the lists' files: the base, its summary parts and record of customers' rows, the layer."""
    return list_layers.folder(storage_dir)


def write_for_model(model: RecommenderModel, storage_dir: Path, n: int = LIST_LENGTH) -> Path:
    """Compute and store every customer's lists from `model` under `storage_dir`.

    Blocks of customers are scored on two threads of one BLAS thread each, and Parquet is encoded on a
    third (1M: 7.7 s to 4.7 s wall, the file byte for byte the same); BLAS's own threads on top of ours
    mostly waited for each other (they doubled the CPU time and the wall time on the 1M set).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _write_base(model, storage_dir, n)


def _write_base(model: RecommenderModel, storage_dir: Path, n: int) -> Path:
    """The full write: the base file (a new id), its summary parts and the record of its customers' rows beside it,
    then the layer removed (a reader in between sees the new base and ignores the old layer and record: they name
    the old base)."""
    base_id = list_layers.new_base_id()
    path = dataset_path(storage_dir)
    extra = {list_layers.BASE_KEY: base_id.encode()}
    write(build(model, n), path, catalogue_counts(model), list_update.lineage(model, n), extra)
    parts, digest = list_layers.parts_of_base(path), sha256_of(path)
    kept = {"base": base_id, "sha256": digest, "parts": json.loads(parts.to_json())}
    write_json(kept, list_layers.summary_path(storage_dir))
    record = list_layers.BaseRecord.of_base(path).in_order_of(list_building.profile_ids(model))
    list_layers.write_record(record, storage_dir, base_id)
    layer_path(storage_dir).unlink(missing_ok=True)
    return path


def update_for_model(
    model: RecommenderModel, storage_dir: Path, user_ids: Iterable[object], n: int = LIST_LENGTH
) -> Path:
    """Store what `write_for_model(model, storage_dir, n)` would, building again only some customers' lists.

    For a model updated with new purchases (its products' side as trained, `model.card.updates` counting the
    updates): `user_ids` are the customers whose purchases (or name, e-mail) changed since the model the stored
    lists came from, new customers included. Their lists go to the layer beside the base (list_update); every
    other customer's rows stay where they are. Without stored lists, or with lists of another trained model or
    of an update before the previous one, a damaged layer or a layer of half the customers, every customer's
    lists are written (a new base, the layer removed). Atomic as `write_for_model`: readers see the old lists
    or the new ones. Returns the base file's path.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        if list_update.update(model, storage_dir, user_ids, n, catalogue_counts(model)) is None:
            _write_base(model, storage_dir, n)
    return dataset_path(storage_dir)


def base_sha256(storage_dir: Path) -> str:
    """The base file's SHA-256: kept beside it by the full write (hashing 450 MB at 10M costs a second a night),
    else computed."""
    with list_layers.opened(storage_dir) as stored:
        kept = stored.kept()
        if kept.get("sha256"):
            return str(kept["sha256"])
    return sha256_of(dataset_path(storage_dir))


def stored_lineage(storage_dir: Path) -> dict:
    """The lineage of the stored lists: the layer's when there is a valid one, else the base's ({} when none or
    unreadable)."""
    try:
        with list_layers.opened(storage_dir) as stored:
            return stored.lineage
    except (OSError, ValueError):
        return {}


def stored_relation(model: RecommenderModel, storage_dir: Path, n: int = LIST_LENGTH) -> str:
    """How the stored lists stand to `model`: "current" (made from this very model), "previous" (from the model
    it updated: `update_for_model` builds on them), or "other" (none, or another model's: a full write)."""
    stored, current = stored_lineage(storage_dir), list_update.lineage(model, n)
    if stored == current:
        return "current"
    return "previous" if list_update.builds_on(stored, current) else "other"


def read(storage_dir: Path, columns: list[str] | None = None, filters: list | None = None) -> pd.DataFrame:
    """The stored lists (optionally some columns, or Arrow `filters` such as [("user_id", "==", "1001")]).

    Base and layer combined: a full write's rows (in another order after an update). `because` holds lists
    of product ids. `attrs["catalogue"]` is the catalogue the lists came from.
    """
    with list_layers.opened(storage_dir) as stored:
        return list_layers.frame_of(stored.read(columns, filters))


def preview(storage_dir: Path, rows: int = 5) -> pd.DataFrame:
    """The first rows of the stored lists, read from the first row groups only."""
    with list_layers.opened(storage_dir) as stored:
        return list_layers.preview(stored, rows)


def parquet_bytes(storage_dir: Path) -> bytes:
    """The stored lists as one Parquet file (the Parquet download): the base file itself, or after an update
    base and layer composed a row group at a time, with the catalogue and lineage."""
    with list_layers.opened(storage_dir) as stored:
        return list_layers.parquet_bytes(stored)


def summary(source: pd.DataFrame | Path | str, top: int = 10) -> dict:
    """What the lists recommend across all customers.

    Keys: customers, rows, products_recommended, catalogue_products, coverage (share of the catalogue
    recommended to anyone, re-buys included), new_coverage (the same on the new-products lists alone:
    the variety customers see among products they have not bought), fallback_share (share of customers
    given best-sellers for want of purchases), top_products (product_id, name, category, customers),
    coverage_by_category (category, products_recommended, products_in_catalogue, share), top_categories
    (category, recommendations, share; on the new-products list; equal counts by name).

    From a storage folder it reads no rows: the summary parts kept with the base and the layer (list_summary).
    """
    if isinstance(source, pd.DataFrame):
        return list_summary.summary_of(list_summary.parts_of(source), source.attrs.get("catalogue") or {}, top)
    with list_layers.opened(Path(source)) as stored:
        return list_summary.summary_of(stored.parts(), stored.catalogue, top)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The lists as CSV (UTF-8), `because` as product ids joined by '; ', for spreadsheets and mail tools."""
    out = frame.copy()
    if "because" in out:
        out["because"] = ["; ".join(map(str, ids)) if ids is not None else "" for ids in out["because"]]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
