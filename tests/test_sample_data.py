"""The generator: the shipped sample's sizes, determinism, structure and defects."""

import subprocess
import sys

import pandas as pd

from dagster_project import ingest, validation
from dagster_project.sample_data import generate
from tests.workspace import ROOT


def test_sample_sizes_match_the_contract(sample_source):
    assert len(pd.read_csv(sample_source / "users1.csv")) == 927
    assert len(pd.read_csv(sample_source / "users2.csv")) == 456
    assert len(pd.read_json(sample_source / "products.json")) == 101
    assert len(pd.read_csv(sample_source / "transactions.csv")) == 3001


def test_shipped_data_is_the_generator_output(sample_source):
    for name in ("users1.csv", "users2.csv", "products.json", "transactions.csv"):
        assert (ROOT / "data" / name).read_bytes() == (sample_source / name).read_bytes(), name


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    generate(tmp_path / "a", 300, 30, 800, seed=7)
    generate(tmp_path / "b", 300, 30, 800, seed=7)
    generate(tmp_path / "c", 300, 30, 800, seed=8)
    assert (tmp_path / "a/transactions.csv").read_bytes() == (tmp_path / "b/transactions.csv").read_bytes()
    assert (tmp_path / "a/transactions.csv").read_bytes() != (tmp_path / "c/transactions.csv").read_bytes()


def test_data_has_structure_and_realistic_defects(sample_source):
    users = ingest.read_users(sample_source)
    tx = ingest.read_transactions(sample_source)
    report = validation.validate(validation.Frames(users, ingest.read_products(sample_source), tx))
    failed = {c.name for c in report.failed()}
    assert {
        "user_id_unique",
        "email_valid",
        "age_in_range",
        "user_known",
        "product_known",
        "quantity_valid",
        "timestamp_valid",
    } <= failed
    assert 93.0 <= report.quality_score <= 98.0
    # repeat purchases and a long tail
    pairs = tx.groupby(["user_id", "product_id"]).size()
    assert (pairs > 1).mean() > 0.1
    popularity = tx["product_id"].value_counts()
    assert popularity.iloc[:10].sum() > 3 * popularity.iloc[-10:].sum()
    times = pd.to_datetime(tx["timestamp"], errors="coerce")
    assert (times.max() - times.min()).days >= 360


def test_cli_writes_a_dataset(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster_project.sample_data",
            "--users",
            "200",
            "--products",
            "20",
            "--transactions",
            "500",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
        ],
        check=True,
        cwd=ROOT,
    )
    assert len(pd.read_csv(tmp_path / "transactions.csv")) == 500
    assert len(pd.read_csv(tmp_path / "users1.csv")) + len(pd.read_csv(tmp_path / "users2.csv")) == 200
