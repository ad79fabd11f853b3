"""Preparation: deduplicated, typed, encoded and normalized tables, with the rows dropped and why."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from dagster_project import preparation
from dagster_project.contract import ENTITIES
from dagster_project.defs import rule_results
from dagster_project.defs.assets import ingestion
from dagster_project.defs.assets.validation import validation_report
from dagster_project.defs.metadata import counts_table, table_out
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import InputLimitsResource, PreparationConfig
from dagster_project.validation import Frames


@dg.multi_asset(
    outs={
        "prepared_users": table_out(
            "Unique users; invalid emails and ages cleared; gender and country encoded.", "prepared/users.parquet"
        ),
        "prepared_products": table_out(
            "Unique products; invalid prices cleared; category and brand encoded.", "prepared/products.parquet"
        ),
        "prepared_transactions": table_out(
            "Transactions every rule accepts, typed, with amounts, by time.", "prepared/transactions.parquet"
        ),
    },
    # Not read here: the edge puts preparation behind the blocking quality_gate on the report.
    deps=[validation_report],
    group_name="preparation",
)
def prepared_data(
    context: dg.AssetExecutionContext,
    config: PreparationConfig,
    input_limits: InputLimitsResource,
    paths: RecoMartPaths,
    raw_users: pd.DataFrame,
    raw_products: pd.DataFrame,
    raw_transactions: pd.DataFrame,
) -> Iterator[dg.Output]:
    """Clean, encode and normalize the raw tables; count every dropped row under the rule it failed."""
    # the masks the ingestion step computed for these same tables: the rules do not run a second time
    masks = rule_results.load_masks(context, paths, ingestion.raw_data.keys)
    frames = Frames(raw_users, raw_products, raw_transactions, input_limits.limits()).with_masks(masks)
    users, users_dropped = preparation.prepare_users(frames)
    products, products_dropped = preparation.prepare_products(frames, config.non_product_pattern)
    transactions, tx_dropped = preparation.prepare_transactions(frames, products)
    for name, frame, raw, dropped in (
        ("prepared_users", users, raw_users, users_dropped),
        ("prepared_products", products, raw_products, products_dropped),
        ("prepared_transactions", transactions, raw_transactions, tx_dropped),
    ):
        context.log.info(f"{name}: {len(frame)} of {len(raw)} rows kept; dropped {dropped or 'none'}")
        yield dg.Output(
            frame,
            output_name=name,
            metadata={
                "input_records": len(raw),
                "rows_dropped": sum(dropped.values()),
                "dropped_by_reason": dropped,
                "dropped_table": counts_table(dropped),
                "rule_masks_reused": set(masks) == {spec.name for spec in ENTITIES},
            },
        )
