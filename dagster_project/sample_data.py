"""Deterministic sample shop data in the RecoMart input contract.

The data has the structure a recommender can learn from (customer segments that prefer some
categories and brands, long-tailed popularity, repeat purchases, a year of timestamps) and a few
realistic defects, so validation has something to find. Everything is vectorized numpy/pyarrow, so
millions of transactions take seconds.

    python -m dagster_project.sample_data --users 1383 --products 101 --transactions 3001 --seed 42 --out data
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from dagster_project.fileio import atomic_path

CATALOG: dict[str, tuple[list[str], list[str], float]] = {
    # category: (brands, product nouns, typical price)
    "Electronics": (["Voltix", "Nimbus", "Arcadia"], ["Headphones", "Charger", "Speaker", "Mouse"], 60.0),
    "Books": (["Penwright", "Folio"], ["Novel", "Cookbook", "Atlas", "Biography"], 18.0),
    "Home": (["Hearth", "Linea", "Casa"], ["Lamp", "Mug", "Towel", "Vase"], 25.0),
    "Sports": (["Stride", "Peak"], ["Yoga Mat", "Bottle", "Shoes", "Band"], 35.0),
    "Beauty": (["Lumen", "Velvet"], ["Serum", "Shampoo", "Cream", "Lipstick"], 20.0),
    "Grocery": (["Harvest", "Orchard", "Daily"], ["Coffee", "Tea", "Granola", "Olive Oil"], 9.0),
    "Toys": (["Blocko", "Tinker"], ["Puzzle", "Robot", "Blocks", "Doll"], 22.0),
    "Fashion": (["Weave", "Northline", "Drift"], ["T-Shirt", "Scarf", "Jacket", "Socks"], 40.0),
}
FIRST_NAMES = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Omar",
    "Lena",
    "Ivan",
    "Sara",
    "Yuki",
    "Ana",
    "Leo",
    "Ella",
    "Raj",
    "Nina",
    "Tom",
    "Ines",
    "Kofi",
    "Maya",
    "Jon",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Chen",
    "Novak",
    "Okafor",
    "Silva",
    "Kowalski",
    "Ito",
    "Brown",
    "Muller",
    "Rossi",
    "Khan",
    "Dubois",
    "Larsen",
    "Costa",
    "Nguyen",
]
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE", "CA"]
WINDOW_START = np.datetime64("2025-11-01T00:00:00")
WINDOW_SECONDS = 365 * 24 * 3600
N_SEGMENTS = 8
REPEAT_RATE = 0.3
SEGMENT_LOYALTY = 0.8  # share of a segment's purchases within its favourite categories


@dataclass(frozen=True)
class DefectRates:
    """Shares of rows given each defect (the sample's quality score lands near 95)."""

    duplicate_users: float = 0.015
    missing_email: float = 0.02
    malformed_email: float = 0.015
    impossible_age: float = 0.012
    bad_price: float = 0.02
    unknown_user: float = 0.01
    unknown_product: float = 0.005
    bad_quantity: float = 0.01
    bad_timestamp: float = 0.005


def _pick(rng: np.random.Generator, n: int, share: float, size: int) -> np.ndarray:
    """Indices of round(n * share) distinct rows (at least one when share > 0 and n is large enough)."""
    k = min(size, int(round(n * share)))
    return rng.choice(size, k, replace=False) if k else np.empty(0, dtype=int)


def make_products(n: int, rng: np.random.Generator, defects: DefectRates) -> pd.DataFrame:
    categories = np.array(list(CATALOG))
    cat_idx = rng.integers(0, len(categories), n)
    brand = np.empty(n, dtype=object)
    name = np.empty(n, dtype=object)
    price = np.empty(n)
    for c, (brands, nouns, base) in enumerate(CATALOG.values()):
        rows = np.flatnonzero(cat_idx == c)
        b = rng.integers(0, len(brands), rows.size)
        noun = rng.integers(0, len(nouns), rows.size)
        brand[rows] = np.array(brands)[b]
        name[rows] = [f"{brands[bi]} {nouns[ni]} {i + 1}" for bi, ni, i in zip(b, noun, rows)]
        price[rows] = np.round(base * rng.lognormal(0.0, 0.5, rows.size), 2)
    width = max(4, len(str(n)))
    products = pd.DataFrame(
        {
            "product_id": [f"P{i + 1:0{width}d}" for i in range(n)],
            "name": name,
            "category": categories[cat_idx],
            "brand": brand,
            "price": price,
        }
    )
    bad = _pick(rng, n, defects.bad_price, n)
    products.loc[bad, "price"] = -products.loc[bad, "price"]
    return products


def make_users(n_rows: int, rng: np.random.Generator, defects: DefectRates) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two user files of n_rows in all; some users appear in both, with conflicting attributes."""
    n_dup = int(round(n_rows * defects.duplicate_users))
    n_unique = n_rows - n_dup
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n_unique)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n_unique)]
    user_id = np.arange(1001, 1001 + n_unique)
    email = (
        pd.Series(first).str.lower()
        + "."
        + pd.Series(last).str.lower()
        + pd.Series(user_id).astype(str)
        + "@example.com"
    )
    age = np.clip(rng.normal(38, 12, n_unique).round(), 18, 85).astype(float)
    signup = WINDOW_START - (rng.integers(0, 2 * 365, n_unique) * np.timedelta64(1, "D"))
    users = pd.DataFrame(
        {
            "user_id": user_id,
            "name": pd.Series(first) + " " + pd.Series(last),
            "email": email,
            "age": age,
            "gender": np.array(["F", "M", "Other"])[rng.choice(3, n_unique, p=[0.49, 0.49, 0.02])],
            "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_unique)],
            "signup_date": pd.Series(signup).dt.strftime("%Y-%m-%d"),
        }
    )
    users.loc[_pick(rng, n_rows, defects.missing_email, n_unique), "email"] = None
    malformed = _pick(rng, n_rows, defects.malformed_email, n_unique)
    users.loc[malformed, "email"] = users.loc[malformed, "name"].str.replace(" ", ".").str.lower() + "_at_example.com"
    users.loc[_pick(rng, n_rows, defects.impossible_age, n_unique), "age"] = rng.choice([-4, 0, 142, 230, 999])
    users["age"] = users["age"].astype("Int64")

    n_first = int(round(n_rows * 0.67))
    first_file = users.iloc[:n_first]
    duplicates = first_file.iloc[rng.choice(n_first, n_dup, replace=False)].copy()
    duplicates["country"] = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_dup)]
    second_file = pd.concat([users.iloc[n_first:], duplicates]).sample(frac=1.0, random_state=int(rng.integers(2**31)))
    return first_file.reset_index(drop=True), second_file.reset_index(drop=True)


def _segment_item_weights(products: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Per-segment purchase probabilities over the catalog.

    A segment buys mostly (SEGMENT_LOYALTY) within its two favourite categories, favouring three
    brands there, and otherwise like everyone else; both parts follow a long-tailed popularity.
    """
    n = len(products)
    popularity = 1.0 / np.arange(1, n + 1) ** 0.9
    popularity = popularity[rng.permutation(n)]
    categories = list(CATALOG)
    all_brands = products["brand"].unique()
    weights = np.empty((N_SEGMENTS, n))
    for s in range(N_SEGMENTS):
        liked_categories = rng.choice(categories, 2, replace=False)
        liked_brands = rng.choice(all_brands, 3, replace=False)
        taste = popularity * products["category"].isin(liked_categories).to_numpy()
        taste = taste * np.where(products["brand"].isin(liked_brands), 3.0, 1.0)
        if taste.sum() == 0:  # a tiny catalog without the liked categories
            taste = popularity.copy()
        weights[s] = SEGMENT_LOYALTY * taste / taste.sum() + (1 - SEGMENT_LOYALTY) * popularity / popularity.sum()
    return weights


def make_transactions(
    n: int, users: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator, defects: DefectRates
) -> pd.DataFrame:
    user_ids = users["user_id"].to_numpy()
    segment = rng.integers(0, N_SEGMENTS, len(user_ids))
    activity = rng.lognormal(0.0, 1.0, len(user_ids))
    user_idx = np.sort(rng.choice(len(user_ids), n, p=activity / activity.sum()))
    seconds = rng.integers(0, WINDOW_SECONDS, n)
    order = np.lexsort((seconds, user_idx))
    user_idx, seconds = user_idx[order], seconds[order]

    item = np.empty(n, dtype=np.int64)
    weights = _segment_item_weights(products, rng)
    txn_segment = segment[user_idx]
    for s in range(N_SEGMENTS):
        rows = np.flatnonzero(txn_segment == s)
        item[rows] = rng.choice(len(products), rows.size, p=weights[s])
    # Repeat purchases: a share of each user's later purchases buy again the last new item they chose.
    first_of_user = np.r_[True, user_idx[1:] != user_idx[:-1]]
    fresh = first_of_user | (rng.random(n) >= REPEAT_RATE)
    last_fresh = np.maximum.accumulate(np.where(fresh, np.arange(n), 0))
    item = item[last_fresh]

    price = products["price"].abs().to_numpy()[item]
    timestamps = pa.array(WINDOW_START + seconds.astype("timedelta64[s]"), type=pa.timestamp("s"))
    frame = pd.DataFrame(
        {
            "transaction_id": np.char.add("T", np.char.zfill(np.arange(1, n + 1).astype(str), max(7, len(str(n))))),
            "user_id": user_ids[user_idx].astype(object),
            "product_id": products["product_id"].to_numpy()[item],
            "quantity": 1 + rng.poisson(0.4, n),
            "unit_price": np.round(price * rng.choice([1.0, 0.9, 0.8], n, p=[0.8, 0.15, 0.05]), 2),
            "timestamp": pc.strftime(timestamps, format="%Y-%m-%d %H:%M:%S")
            .to_numpy(zero_copy_only=False)
            .astype(object),
        }
    )
    frame.loc[_pick(rng, n, defects.unknown_user, n), "user_id"] = 999_000 + rng.integers(0, 999)
    frame.loc[_pick(rng, n, defects.unknown_product, n), "product_id"] = "P-UNKNOWN"
    frame.loc[_pick(rng, n, defects.bad_quantity, n), "quantity"] = rng.choice([0, -1, -2])
    frame.loc[_pick(rng, n, defects.bad_timestamp, n), "timestamp"] = rng.choice(
        ["not a date", "2026-13-45 25:61:00", ""]
    )
    return frame.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        pa_csv.write_csv(
            pa.Table.from_pandas(frame.astype({"user_id": str}) if "user_id" in frame else frame, preserve_index=False),
            tmp,
        )


def generate(
    out: Path,
    users: int = 1383,
    products: int = 101,
    transactions: int = 3001,
    seed: int = 42,
    defects: DefectRates = DefectRates(),
) -> dict[str, int]:
    """Write users1.csv, users2.csv, products.json and transactions.csv into `out`; return row counts."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    product_frame = make_products(products, rng, defects)
    users1, users2 = make_users(users, rng, defects)
    unique_users = pd.concat([users1, users2]).drop_duplicates("user_id")
    transaction_frame = make_transactions(transactions, unique_users, product_frame, rng, defects)

    _write_csv(users1, out / "users1.csv")
    _write_csv(users2, out / "users2.csv")
    with atomic_path(out / "products.json") as tmp:
        tmp.write_text(json.dumps(product_frame.to_dict(orient="records"), indent=1) + "\n")
    _write_csv(transaction_frame, out / "transactions.csv")
    return {
        "users1.csv": len(users1),
        "users2.csv": len(users2),
        "products.json": len(product_frame),
        "transactions.csv": len(transaction_frame),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1383, help="user rows across both files (duplicates included)")
    parser.add_argument("--products", type=int, default=101)
    parser.add_argument("--transactions", type=int, default=3001)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    for name, rows in generate(args.out, args.users, args.products, args.transactions, args.seed).items():
        print(f"{args.out / name}: {rows} rows")


if __name__ == "__main__":
    main()
