"""The whole asset graph on the sample data, in process, in temporary folders."""

import json
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from dagster_project import transaction_store
from dagster_project.definitions import defs
from dagster_project.defs.jobs import INGESTION_ASSETS
from dagster_project.fileio import sha256_of
from dagster_project.recommender import FORMAT_VERSION, load_model

ALL_ASSETS = {
    "raw_users",
    "raw_products",
    "raw_transactions",
    "validation_report",
    "prepared_users",
    "prepared_products",
    "prepared_transactions",
    "user_features",
    "item_features",
    "interaction_matrix",
    "collaborative_filtering_model",
    "user_recommendations",
}


def run_job(name, workspace, instance, extra_config=None):
    config = workspace.run_config()
    for key, value in (extra_config or {}).items():
        config.setdefault(key, {}).update(value)
    return defs.resolve_job_def(name).execute_in_process(run_config=config, instance=instance, raise_on_error=False)


def latest_metadata(instance, asset):
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def completed(tmp_path_factory, sample_source):
    from tests.workspace import make_workspace

    ws = make_workspace(tmp_path_factory.mktemp("pipeline"), sample_source)
    with dg.instance_for_test() as instance:
        result = run_job("complete_pipeline_job", ws, instance)
        yield ws, instance, result


def test_definitions_load_with_jobs_schedule_sensor():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {"ingestion_job", "complete_pipeline_job"} <= set(repo.job_names)
    assert defs.resolve_schedule_def("daily_pipeline").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("data_files_sensor")
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} == ALL_ASSETS


def test_complete_pipeline_materializes_everything(completed):
    ws, instance, result = completed
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == ALL_ASSETS
    assert ws.model_file.exists()


def test_ingestion_counts_and_files(completed):
    ws, instance, _ = completed
    users = latest_metadata(instance, "raw_users")
    assert users["records"] == 1383
    assert latest_metadata(instance, "raw_products")["records"] == 101
    assert latest_metadata(instance, "raw_transactions")["records"] == 3001
    path = ws.storage / "raw" / "users"
    files = list(path.glob("*/users_merged.parquet"))
    assert len(files) == 1 and str(files[0]) == users["path"]
    assert len(pd.read_parquet(files[0])) == 1383


def test_every_materialization_has_file_metadata(completed):
    ws, instance, _ = completed
    for asset in ALL_ASSETS:
        meta = latest_metadata(instance, asset)
        assert {"path", "size_bytes", "sha256", "records"} <= meta.keys(), asset
        assert meta["sha256"] == sha256_of(meta["path"]), asset
    assert "dagster/column_schema" in latest_metadata(instance, "prepared_transactions")


def test_stage_figures_are_in_the_metadata(completed):
    ws, instance, _ = completed
    report = latest_metadata(instance, "validation_report")
    assert 93 <= report["quality_score"] <= 98
    prepared = latest_metadata(instance, "prepared_transactions")
    assert prepared["rule_masks_reused"] is True  # the rules ran once, in the ingestion step
    assert prepared["records"] + prepared["rows_dropped"] == 3001
    assert set(prepared["dropped_by_reason"]) >= {"user_known", "product_known", "quantity_valid", "timestamp_valid"}
    stored = json.loads((ws.storage / "validation" / "validation_report.json").read_text())
    assert stored["quality_score"] == report["quality_score"] and len(stored["checks"]) >= 10


def test_asset_checks_find_the_sample_defects(completed):
    _, _, result = completed
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["email_valid"].passed and not evaluations["user_known"].passed
    assert evaluations["user_id_present"].passed
    assert evaluations["quality_gate"].passed
    assert evaluations["user_known"].metadata["failing_rows"].value == 30


def test_model_beats_popularity_and_carries_its_card(completed):
    ws, instance, result = completed
    model = load_model(ws.model_file)
    metrics = model.card.metrics
    assert metrics["new"]["svd"].ndcg > metrics["new"]["popularity"].ndcg
    assert metrics["rebuy"]["svd"].ndcg >= metrics["rebuy"]["popularity"].ndcg
    assert model.card.run_id == result.run_id and len(model.card.data_checksum) == 64
    assert model.format_version == FORMAT_VERSION and model.card.trained_at
    meta = latest_metadata(instance, "collaborative_filtering_model")
    assert meta["ndcg_at_10"] == metrics["new"]["svd"].ndcg
    user = model.user_ids[0]
    assert len(model.recommend(user, n=5)) == 5


def test_low_quality_stops_before_training_and_keeps_the_model(completed, tmp_path, instance):
    ws, _, _ = completed
    before = sha256_of(ws.model_file)
    prepared_before = sha256_of(transaction_store.prepared_path(ws.storage, "transactions.csv"))
    # A stricter gate than the sample can meet.
    result = run_job(
        "complete_pipeline_job", ws, instance, {"ops": {"validation_report": {"config": {"min_quality_score": 99.5}}}}
    )
    assert not result.success
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "quality_gate")
    assert not gate.passed and "below the threshold 99.5" in gate.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "collaborative_filtering_model" not in materialized and "prepared_transactions" not in materialized
    assert sha256_of(ws.model_file) == before
    assert sha256_of(transaction_store.prepared_path(ws.storage, "transactions.csv")) == prepared_before


def test_broken_data_fails_the_checks_and_keeps_the_model(completed, instance):
    ws, _, _ = completed
    before = sha256_of(ws.model_file)
    tx = pd.read_csv(ws.data / "transactions.csv", dtype=str)
    tx["quantity"] = "-1"  # every transaction invalid
    broken = ws.root / "broken"
    broken.mkdir()
    for f in ws.data.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    tx.to_csv(broken / "transactions.csv", index=False)
    result = run_job(
        "complete_pipeline_job", ws, instance, {"resources": {"paths": {"config": {"data_dir": str(broken)}}}}
    )
    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["quantity_valid"] is False and checks["quality_gate"] is False
    assert sha256_of(ws.model_file) == before


def test_ingestion_job_runs_only_ingestion(workspace, instance):
    result = run_job("ingestion_job", workspace, instance)
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == set(INGESTION_ASSETS)
    assert len(result.get_asset_check_evaluations()) >= 10
    assert not workspace.model_file.exists()


def test_environment_variables_choose_the_folders(workspace, instance, monkeypatch):
    for key, value in workspace.env().items():
        monkeypatch.setenv(key, value)
    result = defs.resolve_job_def("ingestion_job").execute_in_process(instance=instance)
    assert result.success
    assert list((workspace.storage / "raw" / "products").glob("*/products.parquet"))


def test_the_rules_run_once_per_run(workspace, instance, monkeypatch):
    from dagster_project import validation

    calls = []
    validate = validation.validate

    def counted(frames, entities=None):
        calls.extend(entities or ("users", "products", "transactions"))
        return validate(frames, entities)

    monkeypatch.setattr(validation, "validate", counted)
    result = run_job("complete_pipeline_job", workspace, instance)
    # each table's rules once: users and products in their step, the one transactions file in its own
    assert result.success and sorted(calls) == ["products", "transactions", "users"]
    report = latest_metadata(instance, "validation_report")
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failing = sum(e.metadata["failing_rows"].value > 0 for name, e in checks.items() if name != "quality_gate")
    assert report["failed_checks"] == failing  # the report and the checks are the same evaluation


def test_input_limits_are_set_per_run(workspace, instance):
    def timestamp_check(result):
        return next(e for e in result.get_asset_check_evaluations() if e.check_name == "timestamp_valid")

    default = timestamp_check(run_job("ingestion_job", workspace, instance)).metadata["failing_rows"].value
    today = date.today().isoformat()  # every past purchase is now "before the earliest plausible date"
    strict = run_job(
        "ingestion_job", workspace, instance, {"resources": {"input_limits": {"config": {"earliest_timestamp": today}}}}
    )
    check = timestamp_check(strict)
    assert check.metadata["failing_rows"].value > default and not check.passed

    raw_before = instance.get_latest_materialization_event(dg.AssetKey("raw_users")).run_id
    refused = run_job(
        "ingestion_job", workspace, instance, {"resources": {"input_limits": {"config": {"max_json_depth": 5000}}}}
    )
    assert not refused.success
    errors = [
        e.event_specific_data.error.message for e in refused.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    assert errors and "max_json_depth" in errors[0]
    assert instance.get_latest_materialization_event(dg.AssetKey("raw_users")).run_id == raw_before


def test_too_few_customers_to_measure_is_a_run_setting(workspace, instance):
    result = run_job(
        "complete_pipeline_job",
        workspace,
        instance,
        {"ops": {"collaborative_filtering_model": {"config": {"min_eval_users": 10_000}}}},
    )
    assert result.success
    card = load_model(workspace.model_file).card
    assert card.measured is False and card.holdout.min_users == 10_000
    meta = latest_metadata(instance, "collaborative_filtering_model")
    assert meta["measured"] is False and meta["evaluation"].startswith("not measured")


def test_validation_report_reads_the_rule_results_of_the_last_ingestion(workspace, instance):
    assert run_job("ingestion_job", workspace, instance).success
    report_only = defs.resolve_implicit_global_asset_job_def()

    def materialize_report():
        return report_only.execute_in_process(
            run_config=workspace.run_config(),
            instance=instance,
            asset_selection=[dg.AssetKey("validation_report")],
            raise_on_error=False,
        )

    assert materialize_report().success
    assert 93 <= latest_metadata(instance, "validation_report")["quality_score"] <= 98
    stored = workspace.storage / "validation" / "rule_results.json"
    stored.write_text(stored.read_text().replace(json.loads(stored.read_text())["run_id"], "another-run"))
    stale = materialize_report()
    assert not stale.success
    message = next(e.event_specific_data.error.message for e in stale.all_events if e.is_step_failure)
    assert "are from run another-" in message and "run the complete pipeline" in message


def test_feature_tables_are_stored_in_their_layout(completed):
    """A full count stores the interaction table as an update writes it, the user and item features in LZ4."""
    import pyarrow.parquet as pq

    from tests.test_feature_update import LAYOUT, layout

    ws, instance, _ = completed
    folder = ws.storage / "features"
    assert layout(folder / "interactions.parquet") == LAYOUT
    stored = pd.read_parquet(folder / "interactions.parquet")
    assert len(stored) == latest_metadata(instance, "interaction_matrix")["records"] > 0
    assert "covers" in stored.attrs and latest_metadata(instance, "interaction_matrix")["refresh"] == "count"
    for name in ("user_features", "item_features"):
        group = pq.ParquetFile(folder / f"{name}.parquet").metadata.row_group(0)
        assert {group.column(i).compression for i in range(group.num_columns)} == {"LZ4"}
