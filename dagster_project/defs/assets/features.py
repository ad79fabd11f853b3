"""Features: per-user and per-item figures, and the user x item interaction table."""

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project import feature_update, features, interaction_file, model_update, transaction_store
from dagster_project.defs.metadata import table_out
from dagster_project.defs.partitions import all_prepared, covered_now, new_data_run
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.fileio import StagedTable, staged_path
from dagster_project.model_card import TrainingData

INTERACTIONS = "features/interactions.parquet"
USER_FEATURES = "features/user_features.parquet"
ITEM_FEATURES = "features/item_features.parquet"
COVERS = "covers"  # each table's attribute: the files it counts (model_card.TrainingData), the same on all three
CUSTOMERS = "customers"  # the user features' attribute: how many customers the interaction table holds (then kept)


def _covers(storage: Path) -> tuple[TrainingData | None, str]:
    """What the stored tables count, from their Parquet metadata alone, when all three say the same; else why not."""
    paths = [storage / relative for relative in (USER_FEATURES, ITEM_FEATURES, INTERACTIONS)]
    if not any(p.exists() for p in paths):
        return None, "none is stored yet"
    found, why = feature_update.agreed_covers(paths)
    try:
        return (None, why) if found is None else (TrainingData.from_document(found), "")
    except ValueError:
        return None, "the stored feature tables do not say which files they count"


@dg.multi_asset(
    outs={
        "user_features": table_out(
            "Per user: purchases, spend, recency, favourite category, profile codes.", USER_FEATURES, compression="lz4"
        ),
        "item_features": table_out(
            "Per product: purchases, buyers, revenue, repeat-buyer share, popularity rank.",
            ITEM_FEATURES,
            compression="lz4",
        ),
        "interaction_matrix": table_out(
            "User x product interactions (long form): purchases, quantity, confidence.", INTERACTIONS
        ),
    },
    deps=["prepared_transactions"],
    group_name="features",
)
def feature_tables(
    context: dg.AssetExecutionContext,
    paths: RecoMartPaths,
    prepared_users: pd.DataFrame,
    prepared_products: pd.DataFrame,
) -> Iterator[dg.Output]:
    """Aggregate every file's prepared transactions (the whole history) into user, item and interaction features.

    On a refresh of new data only whose files add later purchases to those the stored tables count (all three
    saying the same, in `covers`), the stored tables are brought up to date with the new files alone: the
    buyers' rows and the pairs they bought (feature_update.py; the same tables, without reading the
    history). Anything else counts the whole history again.
    """
    now = covered_now(context, paths)
    before, why = _covers(paths.storage) if new_data_run(context) else (None, "")
    added = None
    if before is not None:
        added, why = model_update.extension(before, now)
    built, covers, n_users = None, {}, None
    if added is not None:
        fresh = transaction_store.load_prepared(paths.storage, added) if added else None
        older = model_update.older_purchases(before, fresh["timestamp"]) if fresh is not None else None
        if older is None:
            newest = model_update.latest(fresh["timestamp"]) if fresh is not None else None
            covers = _covers_of(now, newest or before.last_purchase)
            built, n_users = _updated(context, paths, fresh, prepared_products, covers)
            context.log.info(f"Features brought up to date with {why}: {', '.join(added)[:300] or 'none'}")
        else:
            why = older
    if built is None:
        if new_data_run(context):
            context.log.info(f"Features counted over the whole history: the stored tables cannot be updated: {why}.")
        built = features.build(all_prepared(context, paths), prepared_users, prepared_products)
        covers = _covers_of(now, model_update.latest(built[2]["last_purchase"]))
    users, items, interactions = built
    updated = isinstance(interactions, StagedTable)
    if not updated:
        n_users = int(interactions["user_id"].nunique())
        interactions = _staged(paths.storage / INTERACTIONS, interactions, covers)
    n_pairs = interactions.records
    users.attrs, items.attrs = {**covers, CUSTOMERS: n_users}, dict(covers)
    n_items = len(prepared_products)
    density = n_pairs / (n_users * n_items) if n_users and n_items else 0.0
    yield dg.Output(
        users,
        output_name="user_features",
        metadata={
            "active_users": int((users["transactions"] > 0).sum()),
            "median_spend": float(users["total_spend"].median() or 0.0),
        },
    )
    yield dg.Output(items, output_name="item_features", metadata={"products_sold": int((items["buyers"] > 0).sum())})
    yield dg.Output(
        interactions,
        output_name="interaction_matrix",
        metadata={
            "users": int(n_users),
            "items": int(n_items),
            "density": float(round(density, 6)),
            "refresh": "update" if updated else "count",
        },
    )
    context.log.info(f"Interaction matrix: {n_users} users x {n_items} products, {n_pairs} pairs")


def _covers_of(now: TrainingData, last_purchase: str | None) -> dict:
    return {COVERS: asdict(model_update.training_data(now.files, now.reference, last_purchase))}


def _staged(stored: Path, interactions: pd.DataFrame, covers: dict) -> StagedTable:
    """A counted interaction table written beside the stored one in its layout (interaction_file.py), as an update
    writes it, for the IO manager to rename into place."""
    target = staged_path(stored)
    try:
        interaction_file.write(interactions, target, dict(covers))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StagedTable(target, len(interactions), interactions.head(5))


def _updated(
    context: dg.AssetExecutionContext,
    paths: RecoMartPaths,
    fresh: pd.DataFrame | None,
    products: pd.DataFrame,
    covers: dict,
) -> tuple[tuple[pd.DataFrame, pd.DataFrame, StagedTable], int]:
    """The stored tables with the new files' purchases added, only the rows they change (feature_update.py): the
    interaction table written beside the stored one as it is made; and how many customers it holds."""
    stored = paths.storage / INTERACTIONS
    users = pd.read_parquet(paths.storage / USER_FEATURES)
    customers = users.attrs.get(CUSTOMERS)
    target = staged_path(stored)
    try:
        updated = feature_update.update(users, stored, target, fresh, products, covers)
        if isinstance(customers, int) and not isinstance(customers, bool):
            customers += updated.new_customers
        else:  # tables stored before the count was kept: count once
            customers = pc.count_distinct(pq.read_table(target, columns=["user_id"])["user_id"]).as_py()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    context.log.info(
        f"{len(fresh) if fresh is not None else 0:,} new purchases: {updated.buyers:,} customers' rows counted "
        f"again, {updated.new_pairs:,} new customer-product pairs, {updated.new_customers:,} new customers"
    )
    return (updated.users, updated.items, StagedTable(target, updated.pairs, updated.preview)), customers
