"""Validation rules on hand-built tables, and the quality score's definition."""

import pandas as pd

from dagster_project import validation
from tests.workspace import small_frames as frames


def test_each_rule_counts_its_rows():
    report = validation.validate(frames())
    failing = {c.name: c.failing_rows for c in report.checks}
    assert failing["user_id_unique"] == 1
    assert failing["email_valid"] == 2
    assert failing["age_in_range"] == 2  # 500 and "x"
    assert failing["price_positive"] == 1
    assert failing["user_known"] == 1
    assert failing["product_known"] == 1
    assert failing["quantity_valid"] == 1
    assert failing["timestamp_valid"] == 1
    assert failing["transaction_not_duplicated"] == 1


def test_quality_score_is_the_share_of_records_with_no_defect():
    report = validation.validate(frames())
    # users: rows 2,3,4 have a defect (dup+age, email, email+age); products: B; transactions: rows 2,3,5
    assert report.invalid == {"users": 3, "products": 1, "transactions": 3}
    assert report.quality_score == round(100 * (11 - 7) / 11, 2)


def test_absent_optional_columns_skip_their_checks():
    report = validation.validate(frames(users=pd.DataFrame({"user_id": ["1", "2", "3"]}, dtype="string")))
    skipped = {c.name for c in report.checks if c.skipped}
    assert {"email_valid", "age_in_range"} <= skipped
    assert report.invalid["users"] == 0


def test_schema_failure_scores_zero():
    report = validation.validate(frames(products=pd.DataFrame({"product_id": ["A"]}, dtype="string")))
    assert report.schema_errors == {"products": ["name"]} and report.quality_score == 0.0


def test_examples_point_at_file_and_row():
    users = frames().users.assign(source_file="users1.csv", source_row=[1, 2, 3, 4])
    report = validation.validate(frames(users=users))
    email = next(c for c in report.checks if c.name == "email_valid")
    assert email.examples[0] == {"source_file": "users1.csv", "source_row": "2", "email": "bad"}


def test_missing_product_ids_non_finite_prices_and_implausible_dates_are_counted():
    products = pd.DataFrame(
        {"product_id": ["A", None, "B", "C"], "name": ["a", "b", "c", "d"], "price": ["1.5", "2", "1e309", "2e12"]},
        dtype="string",
    )
    tx = pd.DataFrame(
        {
            "user_id": ["1"] * 4,
            "product_id": ["A"] * 4,
            "unit_price": ["inf", "NaN", "3", "3"],
            "timestamp": ["0001-01-01", "1500-06-01 10:00", "1989-12-31", "2026-01-01"],
        },
        dtype="string",
    )
    report = validation.validate(frames(products=products, transactions=tx))
    failing = {c.name: c.failing_rows for c in report.checks}
    assert failing["product_id_present"] == 1
    assert failing["price_positive"] == 2  # overflow to inf, and above any real price
    assert failing["unit_price_valid"] == 2
    assert failing["timestamp_valid"] == 3


def test_the_earliest_plausible_date_is_a_setting():
    import dataclasses

    from dagster_project.contract import InputLimits

    tx = pd.DataFrame(
        {"user_id": ["1", "1"], "product_id": ["A", "A"], "timestamp": ["1985-05-01", "2026-01-01"]}, dtype="string"
    )
    strict = frames(transactions=tx)
    loose = dataclasses.replace(strict, limits=InputLimits(earliest_timestamp="1980-01-01"))
    assert validation.failure_masks(strict, "transactions")["timestamp_valid"].tolist() == [True, False]
    assert validation.failure_masks(loose, "transactions")["timestamp_valid"].tolist() == [False, False]


def test_rule_masks_are_computed_once_per_table_and_limits():
    import dataclasses

    from dagster_project.contract import InputLimits

    f = frames()
    first = validation.failure_masks(f, "transactions")
    assert validation.failure_masks(f, "transactions") is first  # kept: the report and preparation share them
    assert set(f.masks) == {"transactions"}
    looser = dataclasses.replace(f, limits=InputLimits(earliest_timestamp="1980-01-01"))
    assert looser.masks == {} and validation.failure_masks(looser, "transactions") is not first
    other = dataclasses.replace(f, transactions=f.transactions.copy())
    assert validation.failure_masks(other, "transactions") is not first  # another table: computed again
    given = validation.Frames(f.users, f.products, f.transactions.reset_index(drop=True)).with_masks(
        {"transactions": first, "users": first}  # a users mask of the wrong length is not theirs
    )
    assert set(given.masks) == {"transactions"}
    assert validation.failure_masks(given, "transactions").equals(first.set_axis(given.transactions.index))


def test_repeated_lines_are_found_as_pandas_finds_them():
    import numpy as np

    from dagster_project import repeated_lines
    from dagster_project.contract import duplicated_rows

    rng = np.random.default_rng(7)
    for _ in range(200):  # small alphabets: many repeats, missing values among them
        n, width = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        values = {c: rng.choice(["a", "b", None, "1"], n, p=[0.4, 0.3, 0.2, 0.1]) for c in "xyz"[:width]}
        frame = pd.DataFrame({c: pd.array(v, dtype="string") for c, v in values.items()})
        expected = frame.duplicated(keep="first").to_numpy()
        assert (duplicated_rows(frame) == expected).all()
        # starting from the rows whose line hashes repeat (what the pipeline does): the same rows
        assert (duplicated_rows(frame, repeated_lines.row_hashes(frame)) == expected).all()
    ids = pd.DataFrame({"id": ["T1", "T2", "T2", "T3"], "v": ["x", "y", "y", "z"]}, dtype="string")
    assert duplicated_rows(ids).tolist() == [False, False, True, False]  # the id column alone decides
    assert duplicated_rows(ids.iloc[0:0]).tolist() == []
