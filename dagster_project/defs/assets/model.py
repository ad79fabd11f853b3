"""The collaborative-filtering model: tuned, evaluated against baselines, published atomically."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from dagster_project import model_store, training
from dagster_project.defs.freshness import FRESHNESS_POLICY
from dagster_project.defs.metadata import file_metadata
from dagster_project.defs.partitions import all_prepared
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import ModelConfig
from dagster_project.recommender import ModelParams


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    freshness_policy=FRESHNESS_POLICY,
    # after the features, without loading the interaction table: training counts the same purchases itself
    deps=["prepared_transactions", "interaction_matrix"],
)
def collaborative_filtering_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    paths: RecoMartPaths,
    prepared_products: pd.DataFrame,
    prepared_users: pd.DataFrame,
) -> dg.MaterializeResult:
    """SVD collaborative filtering (shrunk PureSVD) on the user x product matrix.

    Published to models/collaborative_filtering.pkl (the last versions kept beside it), not through the IO manager.
    Trained on every file's prepared purchases: a refresh of new data only retrains on the whole history.
    """
    prepared_transactions = all_prepared(context, paths)
    fixed = (
        None
        if config.auto_tune
        else ModelParams(
            config.factors,
            config.shrinkage,
            config.weighting,
            config.rebuy_weight,
            config.popularity_exponent,
            config.neighbour_weight,
        )
    )
    if prepared_transactions.empty:
        raise dg.Failure(
            description="No valid transactions are left after preparation, so there is nothing to "
            "train on; the current model stays in place. See the validation report."
        )
    model = training.train_model(
        prepared_transactions,
        prepared_products,
        prepared_users,
        config.training_settings(),
        fixed=fixed,
        card={"run_id": context.run_id, "data_checksum": training.data_checksum(prepared_transactions)},
    )
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + context.run_id[:8]
    path = model_store.publish(model, paths.models, version)
    card = model.card
    metrics = card.metrics
    holdout = card.holdout
    measured: dict = {
        "measured": card.measured,
        "holdout_protocol": holdout.protocol,
        "evaluated_users": int(holdout.evaluated_users["new"]),
    }
    if "new" in metrics:
        new = metrics["new"]
        lift = new["svd"].ndcg / new["popularity"].ndcg if new["popularity"].ndcg else None
        context.log.info(
            f"Model saved to {path}: NDCG@10 {new['svd'].ndcg:.4f} vs popularity "
            f"{new['popularity'].ndcg:.4f} ({holdout.protocol}); params {model.params}"
        )
        measured.update(
            {
                "ndcg_at_10": float(new["svd"].ndcg),
                "popularity_ndcg_at_10": float(new["popularity"].ndcg),
                "ndcg_lift_vs_popularity": float(round(lift, 4) if lift else 0.0),
                "precision_at_10": float(new["svd"].precision),
                "recall_at_10": float(new["svd"].recall),
                "coverage": float(new["svd"].coverage),
            }
        )
    if "rebuy" in metrics:
        measured.update(
            {
                "rebuy_ndcg_at_10": float(metrics["rebuy"]["svd"].ndcg),
                "buy_again_ndcg_at_10": float(metrics["rebuy"]["buy_again"].ndcg),
            }
        )
    if holdout.protocol != "time split":
        context.log.warning(
            f"The time holdout had {holdout.evaluated_users['new']} customer(s) to measure; the "
            f"model was measured on a {holdout.protocol} instead (see the model card)."
        )
    for reason in card.not_measured.values():
        context.log.warning(f"Model saved to {path}, {reason}.")
    if card.not_measured:
        measured["evaluation"] = "; ".join(card.not_measured.values())
    if card.tuning is not None:  # whom each setting was measured on while tuning (a capped, seeded sample)
        measured["tuning_customers"] = int(card.tuning.users["new"])
        measured["tuning_customers_available"] = int(card.tuning.available["new"])
        measured["tuning_sample_seed"] = int(card.tuning.seed)
    return dg.MaterializeResult(
        metadata={
            **file_metadata(path, records=model.n_users),
            "version": version,
            "users": int(model.n_users),
            "items": int(model.n_items),
            "factors": int(model.params.factors),
            "shrinkage": float(model.params.shrinkage),
            "weighting": str(model.params.weighting),
            "rebuy_weight": float(model.params.rebuy_weight),
            "popularity_exponent": float(model.params.popularity_exponent),
            "neighbour_weight": float(model.params.neighbour_weight),
            "min_coverage": float(card.min_coverage),
            "selection": card.selection,
            **measured,
            "train_seconds": float(card.train_seconds),
            "metrics": card.to_document()["metrics"],
        }
    )
