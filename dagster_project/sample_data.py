"""Deterministic sample shop data in the RecoMart input contract.

The data has the structure a recommender can learn from (customer segments that prefer some
categories and brands, long-tailed popularity, repeat purchases, a year of timestamps) and a few
realistic defects, so validation has something to find. Everything is vectorized numpy/pyarrow, so
millions of transactions take seconds. Sizes above one chunk (a million transactions by default) are
generated chunk by chunk (sample_stream.py), so 100 million need no more memory than one chunk; with
--daily-files the transactions come as one file per day, as many shops export them.

    python -m dagster_project.sample_data --users 1383 --products 101 --transactions 3001 --seed 42 --out data
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from contextlib import ExitStack
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
WINDOW_DAYS = 365
WINDOW_SECONDS = WINDOW_DAYS * 24 * 3600
N_SEGMENTS = 8
REPEAT_RATE = 0.3
SEGMENT_LOYALTY = 0.8  # share of a segment's purchases within its favourite categories
CHUNK_ROWS = 1_000_000  # transactions made (and held in memory) at a time
DAILY_NAME = "transactions_{day}.csv"  # one export per day; matches the contract's transactions*.csv


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
) -> tuple[pd.DataFrame, np.ndarray]:
    """All `n` rows in one piece, shuffled, and each row's day number in the window (its file with
    --daily-files; kept apart from the timestamp, which may be a defect)."""
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
    frame["day"] = seconds // (24 * 3600)
    frame = frame.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    return frame, frame.pop("day").to_numpy()


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame.astype({"user_id": str}) if "user_id" in frame else frame, preserve_index=False)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        pa_csv.write_csv(_table(frame), tmp)


def daily_name(day: int) -> str:
    """The file of the window's day number `day`: transactions_YYYY-MM-DD.csv."""
    return DAILY_NAME.format(day=str(WINDOW_START + np.timedelta64(day, "D"))[:10])


def _check_layout(out: Path, daily_files: bool) -> None:
    """Refuse to leave both layouts in one folder: the pipeline would read every row twice."""
    other = sorted(out.glob("transactions_*.csv")) if not daily_files else [out / "transactions.csv"]
    other = [p for p in other if p.exists()]
    if other:
        layout = "one file per day" if daily_files else "a single transactions.csv"
        raise FileExistsError(
            f"{other[0]}: the folder already holds transactions in the other layout; writing {layout} beside "
            f"it would make the pipeline read them twice. Remove those files or choose another folder."
        )


def write_transactions(
    chunks: Iterable[tuple[pa.Table, np.ndarray]], out: Path, daily_files: bool, days: range = range(WINDOW_DAYS)
) -> dict[str, int]:
    """Append each chunk to transactions.csv, or with `daily_files` each row to its day's file (each of
    `days` gets a file, a header only when nobody bought that day); return rows per file."""
    counts: dict[str, int] = {}
    with ExitStack() as stack:
        writers: dict[str, pa_csv.CSVWriter] = {}

        def writer(name: str, schema: pa.Schema) -> pa_csv.CSVWriter:
            if name not in writers:
                tmp = stack.enter_context(atomic_path(out / name))
                writers[name] = stack.enter_context(pa_csv.CSVWriter(tmp, schema))
                counts[name] = 0
            return writers[name]

        schema = None
        for table, days in chunks:
            schema = table.schema
            if not daily_files:
                writer("transactions.csv", schema).write_table(table)
                counts["transactions.csv"] += len(table)
                continue
            order = np.argsort(days, kind="stable")
            for part in np.split(order, np.flatnonzero(np.diff(days[order])) + 1):
                if part.size:
                    name = daily_name(int(days[part[0]]))
                    writer(name, schema).write_table(table.take(pa.array(part)))
                    counts[name] += part.size
        if daily_files and schema is not None:
            for day in days:
                writer(daily_name(day), schema)
    return dict(sorted(counts.items()))


def generate(
    out: Path,
    users: int = 1383,
    products: int = 101,
    transactions: int = 3001,
    seed: int = 42,
    defects: DefectRates = DefectRates(),
    chunk_rows: int = CHUNK_ROWS,
    daily_files: bool = False,
    next_day: bool = False,
) -> dict[str, int]:
    """Write users1.csv, users2.csv, products.json and the transactions into `out`; return row counts.

    Up to `chunk_rows` transactions are made in one piece: exactly the rows earlier versions wrote, which
    the shipped sample, the tests and the benchmark figures rest on. Above, they are made chunk by chunk
    with the same distributions (sample_stream.py) and do not depend on the chunk size, though the order
    of the rows in the file does.

    With `next_day`, write only the next day's export of the dataset these arguments make (an average
    day's transactions, in transactions_YYYY-MM-DD.csv for the day after the window), as a shop's next
    daily file arriving beside the ones already read.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not next_day:
        _check_layout(out, daily_files)
    rng = np.random.default_rng(seed)
    product_frame = make_products(products, rng, defects)
    users1, users2 = make_users(users, rng, defects)
    unique_users = pd.concat([users1, users2]).drop_duplicates("user_id")
    if next_day:
        from dagster_project import sample_stream

        day_rows = max(1, round(transactions / WINDOW_DAYS))
        plan = sample_stream.plan_next_day(
            transactions, day_rows, transactions <= chunk_rows, unique_users, product_frame, rng, defects
        )
        del users1, users2, unique_users
        chunks = sample_stream.stream_transactions(plan, chunk_rows)
        return write_transactions(chunks, out, daily_files=True, days=range(WINDOW_DAYS, WINDOW_DAYS + 1))
    if transactions <= chunk_rows:
        frame, days = make_transactions(transactions, unique_users, product_frame, rng, defects)
        chunks: Iterable[tuple[pa.Table, np.ndarray]] = [(_table(frame), days)]
        del frame
    else:
        from dagster_project import sample_stream  # it builds on this module's catalog and rates

        plan = sample_stream.plan_transactions(transactions, unique_users, product_frame, rng, defects)
        chunks = sample_stream.stream_transactions(plan, chunk_rows)

    _write_csv(users1, out / "users1.csv")
    _write_csv(users2, out / "users2.csv")
    with atomic_path(out / "products.json") as tmp:
        tmp.write_text(json.dumps(product_frame.to_dict(orient="records"), indent=1) + "\n")
    counts = {"users1.csv": len(users1), "users2.csv": len(users2), "products.json": len(product_frame)}
    del users1, users2, unique_users  # the transactions need only the plan from here on
    return counts | write_transactions(chunks, out, daily_files)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1383, help="user rows across both files (duplicates included)")
    parser.add_argument("--products", type=int, default=101)
    parser.add_argument("--transactions", type=int, default=3001)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("data"))
    parser.add_argument(
        "--chunk-rows", type=int, default=CHUNK_ROWS, help="transactions made at a time (bounds the memory)"
    )
    parser.add_argument(
        "--daily-files", action="store_true", help="write transactions as one file per day, transactions_YYYY-MM-DD.csv"
    )
    parser.add_argument(
        "--next-day",
        action="store_true",
        help="write only the next day's transactions file of the dataset these options make (a daily refresh's input)",
    )
    args = parser.parse_args(argv)
    counts = generate(
        args.out,
        args.users,
        args.products,
        args.transactions,
        args.seed,
        chunk_rows=args.chunk_rows,
        daily_files=args.daily_files,
        next_day=args.next_day,
    )
    daily = {k: v for k, v in counts.items() if k.startswith("transactions_")}
    for name, rows in counts.items():
        if name not in daily:
            print(f"{args.out / name}: {rows} rows")
    if daily:
        print(f"{args.out}/{DAILY_NAME.format(day='*')}: {len(daily)} files, {sum(daily.values())} rows")


if __name__ == "__main__":
    main()
