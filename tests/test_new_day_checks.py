"""A night's new purchase file, judged on its own against the stored history and the known customers: the
same rule results, examples and row numbers as judging it with the history's lines held in memory, and the
model's update counts the customers it has not seen."""

from __future__ import annotations

import pandas as pd

from dagster_project import ingest, repeated_lines, transaction_store, validation
from dagster_project.contract import TRANSACTIONS
from dagster_project.recommender import load_model
from tests.pipeline_runs import refresh_new_data, run_complete

NEW = "transactions_2026-11-01.csv"


def _raw(ws, name: str) -> pd.DataFrame:
    [path] = sorted((ws.storage / "raw" / name).glob("*/*.parquet"))
    return pd.read_parquet(path)


def test_a_new_file_is_judged_as_with_the_history_in_memory(workspace, instance):
    ws = workspace
    assert run_complete(ws, instance).success
    before = load_model(ws.model_file)
    lines = pd.read_csv(ws.data / "transactions.csv", dtype=str, keep_default_na=False)
    users = _raw(ws, "users")
    newcomer = next(u for u in users["user_id"].dropna() if u not in set(before.user_ids))
    day = lines.iloc[:7].assign(transaction_id=[f"D{i}" for i in range(7)], timestamp="2026-11-01 12:00:00")
    day = day.reset_index(drop=True)
    day.loc[1, "user_id"] = f"  {day.loc[1, 'user_id']} "  # blanks around a known id: the same id
    day.loc[2, "user_id"] = f"{day.loc[2, 'user_id']}.0"  # a known id written as a float: the same id
    day.loc[3, "user_id"] = "NO-SUCH-CUSTOMER"
    day.loc[4, "user_id"] = ""  # no customer: missing, not unknown
    day.loc[5, "user_id"] = newcomer  # a customer the model has not seen
    copied = lines.iloc[[10]]  # a line of the earlier file, byte for byte
    pd.concat([day, copied, day.iloc[[0]]]).to_csv(ws.data / NEW, index=False)  # and a line repeated within

    run = refresh_new_data(ws, instance)

    stored = transaction_store.read_json(transaction_store.result_path(ws.storage, NEW))["report"]
    frame = ingest.read_file(ws.data / NEW, TRANSACTIONS)
    history = pd.read_parquet(transaction_store.hashes_path(ws.storage, "transactions.csv"))
    hashes = repeated_lines.row_hashes(frame.drop(columns=[ingest.SOURCE_COLUMN, ingest.ROW_COLUMN]))
    in_memory = validation.Frames(users, _raw(ws, "products"), frame, earlier_rows=history, row_hashes=hashes)
    expected = validation.validate(in_memory, ("transactions",)).to_dict()
    assert stored["checks"] == expected["checks"]
    checks = {c["name"]: c for c in stored["checks"]}
    repeats = checks["transaction_not_duplicated"]
    assert repeats["failing_rows"] == 2
    assert [e["source_row"] for e in repeats["examples"]] == [str(r) for r in frame["source_row"].iloc[7:9]]
    assert repeats["examples"][0]["transaction_id"] == copied["transaction_id"].iloc[0]
    unknown = checks["user_known"]
    assert unknown["failing_rows"] == 1 and unknown["examples"][0]["user_id"] == "NO-SUCH-CUSTOMER"

    metadata = next(
        e.event_log_entry.dagster_event.materialization.metadata
        for e in instance.get_records_for_run(run.run_id).records
        if e.event_log_entry.dagster_event
        and e.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_log_entry.dagster_event.asset_key.to_user_string() == "collaborative_filtering_model"
    )
    assert metadata["refresh"].value == "update"
    assert metadata["new_customers"].value == 1 == load_model(ws.model_file).n_users - before.n_users
