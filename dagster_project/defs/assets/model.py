"""The collaborative-filtering model: tuned, evaluated against baselines, published atomically."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import model_store, model_update, training, transaction_store
from dagster_project.defs.freshness import FRESHNESS_POLICY
from dagster_project.defs.metadata import file_metadata
from dagster_project.defs.partitions import all_prepared, covered_now, new_data_run
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import ModelConfig
from dagster_project.model_card import ModelCard
from dagster_project.recommender import ModelError, ModelParams, RecommenderModel, load_model
from dagster_project.settings import MODEL_FILENAME


def _fixed(config: ModelConfig) -> ModelParams | None:
    """The settings the run gives, or None when tuning chooses them."""
    if config.auto_tune:
        return None
    return ModelParams(
        config.factors,
        config.shrinkage,
        config.weighting,
        config.rebuy_weight,
        config.popularity_exponent,
        config.neighbour_weight,
    )


def _settings_differ(card: ModelCard, config: ModelConfig) -> str | None:
    """Why the run's model settings ask for a new training (None: the served model was made with them)."""
    fixed = _fixed(config)
    if (fixed is None) == (card.selection == "fixed settings"):
        return "the run asks for tuning" if fixed is None else "the run gives fixed settings and the model was tuned"
    # training keeps at most as many factors as the data allows: more asked for than the model has is the same ask
    if fixed is not None and replace(fixed, factors=min(fixed.factors, card.params.factors)) != card.params:
        return "the run gives other model settings"
    settings = config.training_settings()
    if (card.min_coverage, card.holdout.test_share, card.holdout.min_users) != (
        settings.min_coverage,
        settings.test_share,
        settings.min_eval_users,
    ):
        return "the run asks for other training settings"
    return None


def _version(context: dg.AssetExecutionContext) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + context.run_id[:8]


def _update(
    context: dg.AssetExecutionContext, config: ModelConfig, paths: RecoMartPaths
) -> dg.MaterializeResult | None:
    """The served model brought up to date with the new files (model_update.py), or None: train in full.

    The log says why a full training was chosen instead.
    """
    try:
        model = load_model(paths.models / MODEL_FILENAME)
    except ModelError as exc:
        context.log.info(f"Training in full: {exc}")
        return None
    now = covered_now(context, paths)
    added, why = model_update.extension(model.card.data, now)
    if added is not None and (changed := _settings_differ(model.card, config)):
        added, why = None, changed
    fresh = transaction_store.load_prepared(paths.storage, added) if added else None
    if added is not None and fresh is not None:
        why = model_update.older_purchases(model.card.data, fresh["timestamp"]) or model_update.retrain_reason(
            model, len(fresh), config.update_policy()
        )
        added = None if why else added
    if added is None:
        context.log.info(f"Training in full: {why}.")
        return None
    if fresh is None:  # nothing new for the model: it stays as it is
        context.log.info("No new purchases for the model: the served model stays as it is.")
        return _result(model, paths.models / MODEL_FILENAME, {"refresh": "unchanged"})
    last = model_update.latest(pd.Series([pd.Timestamp(model.card.data.last_purchase), fresh["timestamp"].max()]))
    covered = model_update.training_data(now.files, now.reference, last)
    updated, buyers = model_update.update_model(model, fresh, covered, added, run_id=context.run_id)
    path = model_store.publish(updated, paths.models, _version(context))
    update = updated.card.update
    context.log.info(
        f"Model brought up to date without training again: {len(fresh):,} purchases from {', '.join(added)[:300]} "
        f"added to {len(buyers):,} customers' histories ({update.updates} update(s) since it was trained "
        f"{updated.card.trained_at})"
    )
    return _result(
        updated,
        path,
        {
            "refresh": "update",
            "purchases_added": len(fresh),
            "customers_updated": len(buyers),
            # the customers the update appended (its buyers not in the model): no look-up of ~1M text ids again
            "new_customers": updated.n_users - model.n_users,
            "updates_since_training": update.updates,
            "purchases_added_since_training": update.transactions,
        },
    )


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
    if new_data_run(context) and not config.update_with_new_data:
        context.log.info("Training in full: the run's model settings say update_with_new_data: false.")
    elif new_data_run(context) and (updated := _update(context, config, paths)):
        return updated
    prepared_transactions = all_prepared(context, paths)
    fixed = _fixed(config)
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
        card={"run_id": context.run_id},
    )
    covered = covered_now(context, paths, model_update.latest(prepared_transactions["timestamp"]))
    model.card = replace(model.card, data=covered, data_checksum=model_update.combined_checksum(covered))
    path = model_store.publish(model, paths.models, _version(context))
    card = model.card
    if "new" in card.metrics:
        new = card.metrics["new"]
        context.log.info(
            f"Model saved to {path}: NDCG@10 {new['svd'].ndcg:.4f} vs popularity "
            f"{new['popularity'].ndcg:.4f} ({card.holdout.protocol}); params {model.params}"
        )
    if card.holdout.protocol != "time split":
        context.log.warning(
            f"The time holdout had {card.holdout.evaluated_users['new']} customer(s) to measure; the "
            f"model was measured on a {card.holdout.protocol} instead (see the model card)."
        )
    for reason in card.not_measured.values():
        context.log.warning(f"Model saved to {path}, {reason}.")
    return _result(model, path, {"refresh": "training"})


def _result(model: RecommenderModel, path: Path, extra: dict) -> dg.MaterializeResult:
    """The model's materialization: its file, settings and the figures its training measured (an update keeps them)."""
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
    if card.not_measured:
        measured["evaluation"] = "; ".join(card.not_measured.values())
    if card.tuning is not None:  # whom each setting was measured on while tuning (a capped, seeded sample)
        measured["tuning_customers"] = int(card.tuning.users["new"])
        measured["tuning_customers_available"] = int(card.tuning.available["new"])
        measured["tuning_sample_seed"] = int(card.tuning.seed)
    return dg.MaterializeResult(
        metadata={
            **file_metadata(path, records=model.n_users),
            "version": card.version or "",
            "trained_at": card.trained_at,
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
            **extra,
        }
    )
