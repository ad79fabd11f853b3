"""The Ta Feng converter (bench/tafeng.py): lines in the real file's shape become an export the pipeline accepts.

A few hand-written lines with the real file's quirks (a UTF-8 BOM, every field quoted, CRLF line ends,
customer ids with leading zeros, day-only M/D/YYYY dates, SALES_PRICE as the line total); no download.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import tafeng
from dagster_project import ingest, preparation, validation

HEADER = ",".join(f'"{column}"' for column in tafeng.COLUMNS)
LINES = [
    '"11/1/2000","01104905","45-49","115","110411","4710199010372","2","24","30"',
    '"11/1/2000","00418683","45-49","115","120107","4710857472535","1","48","46"',
    '"12/25/2000","01104905","45-49","115","120107","4710857472535","3","96","120"',
    '"2/28/2001","00000012","<25","Others","100407","4710043654103","1","142","166"',
]


def write_raw(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *lines]) + "\r\n").encode("utf-8"))
    return path


def test_ta_feng_lines_become_an_export_the_pipeline_reads_without_a_defect(tmp_path: Path) -> None:
    out = tmp_path / "export"
    counts = tafeng.convert(write_raw(tmp_path / "ta_feng.csv", LINES), out)
    assert counts == {"users.csv": 3, "products.json": 3, "transactions.csv": 4}

    frames = validation.Frames(ingest.read_users(out), ingest.read_products(out), ingest.read_transactions(out))
    report = validation.validate(frames)
    assert report.quality_score == 100.0, [c for c in report.checks if not c.passed]

    users = frames.users.set_index("user_id")
    assert sorted(users.index) == ["00000012", "00418683", "01104905"]  # leading zeros kept
    assert users.loc["00000012", "age_group"] == "<25"

    products = json.loads((out / "products.json").read_text())
    named = {p["product_id"]: p for p in products}
    assert named["4710857472535"]["name"] == "120107 / 4710857472535"  # the contract needs a name
    assert named["4710857472535"]["category"] == "120107"

    prepared_products, _ = preparation.prepare_products(frames)
    transactions, dropped = preparation.prepare_transactions(frames, prepared_products)
    assert len(transactions) == 4 and not sum(dropped.values())
    line = transactions.set_index("transaction_id").loc["T3"]
    assert line["user_id"] == "01104905" and line["quantity"] == 3
    assert line["unit_price"] == pytest.approx(40.0)  # SALES_PRICE 120 is the total of 3
    assert str(line["timestamp"].date()) == "2000-12-25"


def test_a_file_without_ta_feng_columns_is_refused_with_the_missing_ones_named(tmp_path: Path) -> None:
    source = tmp_path / "other.csv"
    source.write_text("TRANSACTION_DT,CUSTOMER_ID\n11/1/2000,1\n")
    with pytest.raises(ValueError, match="PRODUCT_ID"):
        tafeng.convert(source, tmp_path / "export")
    assert not (tmp_path / "export" / "transactions.csv").exists()
