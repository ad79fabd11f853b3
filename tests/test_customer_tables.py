"""What the Recommendations and Model history pages say, on small hand-made frames: counts, empty cells,
the per-customer file, a list that stays a two-column table whatever the product names hold."""

from __future__ import annotations

import io

import pandas as pd

from streamlit_app.customer_tables import (
    NO_PURCHASE,
    count_text,
    customer_download,
    customer_table,
    list_markdown,
    sort_customers,
)
from streamlit_app.model_versions import duration, markdown_table, version_label

CUSTOMERS = pd.DataFrame(
    {
        "user_id": pd.array(["7", "12", "3"], dtype="string"),
        "name": pd.array(["Liam Garcia", None, "Liam Garcia"], dtype="string"),
        "email": pd.array(["liam@a.io", "x@b.io", ""], dtype="string"),
        "country": pd.array(["ES", None, "IT"], dtype="string"),
        "purchases": [3, 0, 9],
        "spend": [30.5, 0.0, 120.25],
        "last_purchase": pd.to_datetime(["2026-03-01T10:00Z", None, "2026-05-02T09:00Z"], utc=True),
    }
)


def test_counts_are_honest():
    assert count_text(50, 76, "Garcia") == "50 of 76 customers match 'Garcia' — refine your search to see the others."
    assert count_text(1, 1, "liam@a.io") == "1 customer matches 'liam@a.io'."
    assert count_text(3, 3) == "All 3 customers."
    assert count_text(200, 1383).startswith("Showing 200 of 1,383 customers")


def test_customer_table_has_a_word_for_every_gap():
    table = customer_table(CUSTOMERS)
    assert "None" not in table.astype(str).to_numpy() and not table.isna().any().any()
    assert table.loc[1, "name"] == "–" and table.loc[2, "email"] == "–"
    assert table["last_purchase"].tolist() == ["2026-03-01", NO_PURCHASE, "2026-05-02"]


def test_sorting_puts_gaps_last():
    assert sort_customers(CUSTOMERS, "Most spent")["user_id"].tolist() == ["3", "7", "12"]
    assert sort_customers(CUSTOMERS, "Most recent purchase")["user_id"].tolist() == ["3", "7", "12"]
    assert sort_customers(CUSTOMERS, "Name")["user_id"].tolist() == ["7", "3", "12"]
    assert sort_customers(CUSTOMERS, "Best match") is CUSTOMERS  # a search keeps its own order


RECS = pd.DataFrame(
    {
        "rank": [1, 2],
        "product_id": ["P1", "P2"],
        "name": ["Tea | Green [large]", "*Soap*"],
        "category": ["Grocery", None],
        "brand": ["Daily", None],
        "price": [3.5, None],
        "score": [0.0042, 0.0031],
        "reason": ["similar customers", "similar customers"],
        "because": [["P9", "P8"], []],
        "explanation": ["because you bought Mug 9 and Pot 8", "a best-seller"],
    }
)


def test_a_list_stays_two_readable_columns_whatever_the_names():
    text = list_markdown(RECS)
    rows = text.splitlines()
    assert rows[0] == "| # | Product | Why |" and len(rows) == 4
    assert all(row.replace("\\|", "").count("|") == 4 for row in rows)  # names never add a column
    assert "because you bought Mug 9 and Pot 8" in rows[2] and "0.0042" not in text


def test_the_customers_file_names_them_on_every_row():
    data = customer_download({"user_id": "7", "name": "Liam Garcia", "email": None}, RECS, "new products")
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert list(frame.columns[:4]) == ["user_id", "name", "email", "list"]
    assert frame["user_id"].tolist() == ["7", "7"] and frame["email"].tolist() == ["", ""]
    assert frame["product_name"].tolist() == RECS["name"].tolist() and frame["because"].tolist() == ["P9 P8", ""]


def test_versions_and_times_in_words():
    assert version_label("20261127T114228Z-e2a4605b") == "27 Nov 2026 11:42 (e2a4605b)"
    assert version_label("hand-made") == "hand-made" and version_label(None) == "unknown version"
    assert duration(2.345) == "2.3 s" and duration(125) == "2 min 5 s" and duration(None) == "–"
    table = markdown_table(pd.DataFrame({"": ["customers"], "served now: a|b": ["1,000"]}))
    assert table.splitlines()[0] == "|  | served now\\: a\\|b |"
