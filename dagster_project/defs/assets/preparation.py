"""Preparation: deduplicated, typed, encoded and normalized tables, with the rows dropped and why."""

import dagster as dg
import pandas as pd

from dagster_project import preparation
from dagster_project.defs.metadata import counts_table, table_out
from dagster_project.defs.run_config import PreparationConfig
from dagster_project.validation import Frames


@dg.multi_asset(
    outs={"prepared_users": table_out("Unique users; invalid emails and ages cleared; gender and country encoded."),
          "prepared_products": table_out("Unique products; invalid prices cleared; category and brand encoded."),
          "prepared_transactions": table_out("Transactions every rule accepts, typed, with amounts, by time.")},
    deps=["validation_report"],
    group_name="preparation",
)
def prepared_data(context: dg.AssetExecutionContext, config: PreparationConfig, raw_users: pd.DataFrame,
                  raw_products: pd.DataFrame, raw_transactions: pd.DataFrame):
    """Clean, encode and normalize the raw tables; count every dropped row under the rule it failed."""
    frames = Frames(raw_users, raw_products, raw_transactions)
    users, users_dropped = preparation.prepare_users(frames)
    products, products_dropped = preparation.prepare_products(frames, config.non_product_pattern)
    transactions, tx_dropped = preparation.prepare_transactions(frames, products)
    for name, frame, raw, dropped in (("prepared_users", users, raw_users, users_dropped),
                                      ("prepared_products", products, raw_products, products_dropped),
                                      ("prepared_transactions", transactions, raw_transactions, tx_dropped)):
        context.log.info(f"{name}: {len(frame)} of {len(raw)} rows kept; dropped {dropped or 'none'}")
        yield dg.Output(frame, output_name=name, metadata={
            "input_records": dg.MetadataValue.int(len(raw)),
            "rows_dropped": dg.MetadataValue.int(sum(dropped.values())),
            "dropped_by_reason": dg.MetadataValue.json(dropped),
            "dropped_table": counts_table(dropped),
        })
