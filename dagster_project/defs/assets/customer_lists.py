"""Every customer's recommendation lists, from the model just published (see dagster_project/customer_lists.py)."""

import time

import dagster as dg

from dagster_project import customer_lists, transaction_store
from dagster_project.defs.metadata import file_metadata
from dagster_project.defs.partitions import new_data_run
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.recommender import load_model
from dagster_project.settings import MODEL_FILENAME


@dg.asset(group_name="model", deps=["collaborative_filtering_model"], kinds={"parquet"})
def user_recommendations(context: dg.AssetExecutionContext, paths: RecoMartPaths) -> dg.MaterializeResult:
    """Top-10 new products and top-10 buy-again for every known customer, with why; best-sellers for
    customers without purchases. Under storage/user_recommendations/: one Parquet file in row groups (the
    base, written whole), and after a nightly model update a layer beside it with the lists of the customers
    built again since (changes.parquet). The file metadata describe the base; records count both together.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    model = load_model(paths.models / MODEL_FILENAME)
    update = model.card.update
    stored = customer_lists.stored_relation(model, paths.storage)
    path = customer_lists.dataset_path(paths.storage)
    if stored == "current":
        context.log.info("The stored lists are already this model's: nothing to make again.")
    elif stored == "previous" and update is not None and new_data_run(context) and model.card.run_id == context.run_id:
        # the model was brought up to date in this run: only the latest files' buyers have other lists
        buyers = transaction_store.load_prepared(paths.storage, update.latest_files)["user_id"].unique()
        path = customer_lists.update_for_model(model, paths.storage, list(buyers))
        context.log.info(
            f"Lists made again for the {len(buyers):,} customers who bought in "
            f"{', '.join(update.latest_files)[:300]}; every other customer's kept"
        )
    else:
        path = customer_lists.write_for_model(model, paths.storage)
    summary = customer_lists.summary(paths.storage)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    top = summary["top_categories"]
    context.log.info(
        f"Lists for {summary['customers']} customers at {path}: {summary['products_recommended']} products "
        f"recommended ({summary['coverage']:.1%} of the catalogue, {summary['new_coverage']:.1%} as new products) "
        f"in {seconds:.1f} s"
    )
    return dg.MaterializeResult(
        metadata={
            **file_metadata(
                path,
                records=summary["rows"],
                frame=customer_lists.preview(paths.storage),
                sha256=customer_lists.base_sha256(paths.storage),
            ),
            **_layer_metadata(paths),
            "customers": summary["customers"],
            "products_recommended": summary["products_recommended"],
            "coverage": float(round(summary["coverage"], 4)),
            "new_products_coverage": float(round(summary["new_coverage"], 4)),
            "fallback_share": float(round(summary["fallback_share"], 4)),
            "top_categories": dg.MetadataValue.md(
                top.assign(share=top["share"].map("{:.1%}".format)).to_markdown(index=False)
            ),
            "model_version": model.card.version or "",
            "seconds": float(round(seconds, 2)),
            "cpu_seconds": float(round(cpu_seconds, 2)),  # beside wall time: what a busy machine cannot inflate
        }
    )


def _layer_metadata(paths: RecoMartPaths) -> dict:
    """The layer of customers changed since the base, when there is one (the base's figures are `path` and co)."""
    layer = customer_lists.layer_path(paths.storage)
    if not layer.is_file():
        return {}
    return {"changes_path": layer, "changes_size_bytes": layer.stat().st_size}
