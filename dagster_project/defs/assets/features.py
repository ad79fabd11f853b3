"""Features: per-user and per-item figures, and the user x item interaction table."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from dagster_project import features
from dagster_project.defs.metadata import table_out
from dagster_project.defs.partitions import all_prepared
from dagster_project.defs.resources import RecoMartPaths


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
            "User x product interactions (long form): purchases, quantity, confidence.", "features/interactions.parquet"
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
    """Aggregate every file's prepared transactions (the whole history) into user, item and interaction features."""
    prepared_transactions = all_prepared(context, paths)
    users, items, interactions = features.build(prepared_transactions, prepared_users, prepared_products)
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
