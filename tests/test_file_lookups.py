"""Purchase files of one step judged against the same customers and products: the ids are converted once and
every file gets the verdicts the plain lookup gives; a step's files log one entry, not one per file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dagster_project import contract, validation
from tests.pipeline_runs import run_complete
from tests.workspace import small_frames


def _as_text(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values.tolist()]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [40, 12, 4])  # more values than the reference holds (one large file), as many, fewer
def test_a_lookup_finds_each_value_whose_text_is_a_known_value_whichever_side_is_the_set(seed, size):
    rng = np.random.default_rng(seed)
    pool = np.array(["1", "01", "1.0", " 1", "1 ", "é", "", "U7", "u7", "P-9", "None", "3"], dtype=object)
    reference = pd.Series(rng.choice(pool, 12), dtype="string")
    reference[rng.random(12) < 0.2] = pd.NA
    values = pd.Series(rng.choice(pool, size), dtype="string")
    values[rng.random(size) < 0.2] = pd.NA
    numbers = pd.Series(rng.integers(0, 5, 12))  # ids read as numbers compare as their text
    for known in (reference, numbers):
        texts = {v for v in _as_text(known) if v is not None}
        expected = [v is not None and v in texts for v in _as_text(values)]  # blanks, "01", "1.0": other ids
        assert contract.in_known(values, contract.known_values(known)).tolist() == expected
        assert contract.is_in(values, known).tolist() == expected


def test_files_judged_with_shared_lookups_get_the_plain_verdicts_even_when_the_customers_change():
    whole = small_frames()
    lookups: dict = {}
    tx = whole.transactions
    verdicts = []
    for users in (whole.users, whole.users.iloc[: len(whole.users) // 2]):  # another table: indexed again
        for part in (tx.iloc[:3], tx.iloc[3:]):
            plain = validation.validate(dataclasses.replace(whole, users=users, transactions=part), ("transactions",))
            shared = dataclasses.replace(whole, users=users, transactions=part, lookups=lookups)
            assert validation.validate(shared, ("transactions",)).to_dict() == plain.to_dict()
            verdicts.append(plain.invalid_records)
    assert verdicts[:2] != verdicts[2:]  # fewer customers: more purchases of unknown customers


def test_a_step_over_many_purchase_files_logs_one_entry(workspace, instance):
    source = workspace.data / "transactions.csv"
    lines = pd.read_csv(source, dtype=str, keep_default_na=False)
    source.unlink()
    names = [f"transactions_part{i}.csv" for i in range(4)]
    for name, rows in zip(names, np.array_split(np.arange(len(lines)), 4), strict=True):
        lines.iloc[rows].to_csv(workspace.data / name, index=False)
    result = run_complete(workspace, instance)
    assert result.success
    for step in ("raw_transactions", "prepared_transactions"):
        logs = [
            e.user_message for e in instance.all_logs(result.run_id) if e.step_key == step and e.dagster_event is None
        ]
        assert len(logs) == 1, (step, logs)
        assert all(name in logs[0] for name in names)
