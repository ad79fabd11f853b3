"""Features: per-user and per-item figures, and the user x item interaction table."""

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from dagster_project import features, model_update, transaction_store
from dagster_project.defs.metadata import table_out
from dagster_project.defs.partitions import all_prepared, covered_now, new_data_run
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.model_card import TrainingData

INTERACTIONS = "features/interactions.parquet"
COVERS = "covers"  # the interaction table's attribute: the files it counts (model_card.TrainingData)


def _covers(path: Path) -> TrainingData | None:
    """What a stored interaction table counts, from its Parquet metadata alone (None: not said, or unreadable)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(b"PANDAS_ATTRS")
        found = json.loads(raw).get(COVERS) if raw else None
        return None if found is None else TrainingData.from_document(found)
    except (OSError, ValueError, AttributeError):
        return None


@dg.multi_asset(
    outs={
        "user_features": table_out(
            "Per user: purchases, spend, recency, favourite category, profile codes.", "features/user_features.parquet"
        ),
        "item_features": table_out(
            "Per product: purchases, buyers, revenue, repeat-buyer share, popularity rank.",
            "features/item_features.parquet",
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

    On a refresh of new data only whose files add later purchases to those already counted, the stored
    interaction table is brought up to date with the new files alone (the same tables, without reading
    the history); anything else counts the whole history again.
    """
    now = covered_now(context, paths)
    stored = paths.storage / INTERACTIONS
    before = _covers(stored) if new_data_run(context) and stored.exists() else None
    if before is None:
        why = "it does not say which files it counts" if stored.exists() else "none is stored yet"
        added, why = None, f"the stored interaction table cannot be extended: {why}"
    else:
        added, why = model_update.extension(before, now)
    built = None
    if added is not None:
        fresh = transaction_store.load_prepared(paths.storage, added) if added else None
        older = model_update.older_purchases(before, fresh["timestamp"]) if fresh is not None else None
        if older is None:
            built = features.extend(pd.read_parquet(stored), fresh, prepared_users, prepared_products)
            context.log.info(f"Features brought up to date with {why}: {', '.join(added)[:300] or 'none'}")
        else:
            why = older
    if built is None:
        if new_data_run(context):
            context.log.info(f"Features counted over the whole history: {why}.")
        built = features.build(all_prepared(context, paths), prepared_users, prepared_products)
    users, items, interactions = built
    last = model_update.latest(interactions["last_purchase"])
    interactions.attrs[COVERS] = asdict(model_update.training_data(now.files, now.reference, last))
    n_users, n_items = interactions["user_id"].nunique(), len(prepared_products)
    density = len(interactions) / (n_users * n_items) if n_users and n_items else 0.0
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
        metadata={"users": int(n_users), "items": int(n_items), "density": float(round(density, 6))},
    )
    context.log.info(f"Interaction matrix: {n_users} users x {n_items} products, {len(interactions)} pairs")
