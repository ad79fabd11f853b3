"""Reading exports: merging, id normalization, and errors that name the file and the fix."""

import json
import re

import pandas as pd
import pytest

from dagster_project import ingest
from dagster_project.contract import id_key, normalize_ids


def test_users_from_every_file_are_merged_with_their_source(sample_source):
    messages = []
    users = ingest.read_users(sample_source, messages.append)
    assert len(users) == 1383
    assert users[ingest.SOURCE_COLUMN].value_counts().to_dict() == {"users1.csv": 927, "users2.csv": 456}
    assert messages == [
        "Discovered 2 user data files",
        "Read 927 records from users1.csv",
        "Read 456 records from users2.csv",
        "Merged dataset contains 1383 records",
    ]


def test_ids_are_trimmed_text():
    assert normalize_ids(__import__("pandas").Series([" 17850.0", "A1 ", "", None, 12])).tolist()[:2] == ["17850", "A1"]
    assert id_key(17850) == id_key("17850.0") == id_key(" 17850 ") == "17850"


def test_json_lines_and_extra_columns_are_accepted(tmp_path):
    (tmp_path / "products.json").write_text(
        '{"product_id": 1, "name": "A", "colour": "red"}\n{"product_id": 2, "name": "B", "colour": "blue"}\n'
    )
    products = ingest.read_products(tmp_path)
    assert products["product_id"].tolist() == ["1", "2"]
    assert "colour" in products


def test_semicolon_delimiter_and_bom(tmp_path):
    (tmp_path / "users.csv").write_bytes("\ufeffuser_id;name\n1;Ann\n2;Bo\n".encode("utf-8"))
    users = ingest.read_users(tmp_path)
    assert users["user_id"].tolist() == ["1", "2"] and users["name"].tolist() == ["Ann", "Bo"]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "No users file"),
        (lambda d: (d / "users.csv").write_text(""), "users.csv: the file is empty"),
        (lambda d: (d / "users.csv").write_text("user_id,name\n"), "users.csv: the file has a header but no data rows"),
        (
            lambda d: (d / "users.csv").write_text("userid,name\n1,A\n"),
            "users.csv: required column(s) 'user_id' missing",
        ),
    ],
)
def test_bad_user_files_say_which_file_and_what_to_do(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(ingest.DataInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest.read_users(tmp_path)


def test_missing_folder_names_the_setting(tmp_path):
    with pytest.raises(ingest.DataInputError, match="RECOMART_DATA_DIR"):
        ingest.read_users(tmp_path / "nope")


def test_invalid_json_names_line_and_column(tmp_path):
    (tmp_path / "products.json").write_text('[\n {"product_id": 1, "name": "A"},\n {"product_id": 2 "name": "B"}\n]')
    with pytest.raises(ingest.DataInputError, match=r"products.json: invalid JSON at line 3, column"):
        ingest.read_products(tmp_path)


def test_json_that_is_not_objects(tmp_path):
    (tmp_path / "products.json").write_text(json.dumps([{"product_id": 1, "name": "A"}, 5]))
    with pytest.raises(ingest.DataInputError, match="item 2 is not an object"):
        ingest.read_products(tmp_path)


def test_compressed_exports_are_read_whatever_their_name(tmp_path):
    import bz2
    import gzip

    (tmp_path / "users1.csv").write_bytes(gzip.compress(b"user_id,name\n1,Ann\n"))
    (tmp_path / "users2.csv.gz").write_bytes(gzip.compress(b"user_id,name\n2,Bo\n"))
    (tmp_path / "users3.csv").write_bytes(bz2.compress("user_id;name\n3;Zoë\n".encode("cp1252")))
    assert ingest.read_users(tmp_path)["name"].tolist() == ["Ann", "Bo", "Zoë"]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml",
            r"looks like an Excel workbook \(\.xlsx\), not a CSV export",
        ),
        (b"PK\x03\x04\x14\x00data.csv", r"looks like a zip archive.*gzip-compressed exports are read"),
        (b"\x1f\x8b\x08\x00broken", r"damaged gzip archive"),
        (b"user_id,name\n1,A\x00\x00\x01\n", r"not a text file \(it holds binary data\)"),
        (b"user_id,name,user_id\n1,A,2\n", r"the column 'user_id' appears 2 times in the header \(columns 1, 3\)"),
        (b"user_id,name\n1," + b"x" * 70_000 + b"\n", r"row 1, column 'name': the value is 70,000 characters long"),
        (
            b"user_id,name\n" + b'1,"open quote\n' * 3,
            r"the CSV cannot be parsed \(a quoted field starting on row \d+ is never",
        ),
    ],
)
def test_unreadable_csv_is_named_with_what_it_is(tmp_path, content, message):
    (tmp_path / "users.csv").write_bytes(content)
    with pytest.raises(ingest.DataInputError, match=r"users\.csv: .*" + message):
        ingest.read_users(tmp_path)


def test_a_header_of_foreign_names_is_counted_not_quoted(tmp_path):
    (tmp_path / "users.csv").write_text("SECRET-TOKEN-123,other\n1,2\n")
    with pytest.raises(ingest.DataInputError) as caught:
        ingest.read_users(tmp_path)
    assert "2 column(s) and none of them is one RecoMart expects" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    (tmp_path / "users.csv").write_text("userid,SECRET-TOKEN-123\n1,2\n")  # a misspelling: a real export, listed
    with pytest.raises(ingest.DataInputError, match="Did you mean 'userid' for 'user_id'"):
        ingest.read_users(tmp_path)


def test_a_huge_header_fails_at_once(tmp_path):
    import time

    (tmp_path / "transactions.csv").write_text(",".join(f"c{i}" for i in range(300_000)) + "\n1\n")
    started = time.monotonic()
    with pytest.raises(ingest.DataInputError, match="the first line is longer than 256 KB"):
        ingest.read_transactions(tmp_path)
    assert time.monotonic() - started < 2


def test_json_ids_and_names_that_are_not_text_become_missing(tmp_path):
    (tmp_path / "products.json").write_text(
        '[{"product_id": null, "name": "a"}, {"product_id": {"x": 1}, "name": ["b"]}, {"product_id": 1.0, "name": 7},'
        ' {"product_id": "P4", "name": true, "price": 1e309, "tags": ["x", "y"]}]'
    )
    products = ingest.read_products(tmp_path)
    assert products["product_id"].tolist()[:2] == [pd.NA, pd.NA] and products["product_id"].tolist()[2:] == ["1", "P4"]
    assert products["name"].isna().tolist() == [False, True, False, True]
    assert products["price"].tolist()[3] == "inf" and products["tags"].tolist()[3] == '["x", "y"]'


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "the JSON is nested more than 32 levels deep"),
        (
            '{"product_id": 1, "name": "a"}\n{"product_id": 2, "name": ' + "[" * 50 + "]" * 50 + ', "x": 1}\n'
            '{"product_id": 3, "extra": ' + "[" * 50 + "]" * 50 + "}\n",
            "item 3, field 'extra': the JSON is nested",
        ),
        ('[{"product_id": 1, "name": "a", "name": "b"}]', "item 1 has the field 'name' more than once"),
        ('[{"product_id": 1' + "0" * 5000 + ', "name": "a"}]', "a number in the JSON has too many digits"),
        ('{"SECRET-KEY": [1, 2]}', "found an object with the list under one of its keys"),
    ],
)
def test_unreadable_json_is_named_with_what_it_is(tmp_path, text, message):
    (tmp_path / "products.json").write_text(text)
    with pytest.raises(ingest.DataInputError, match=r"products\.json: .*" + re.escape(message)) as caught:
        ingest.read_products(tmp_path)
    assert "SECRET" not in str(caught.value)


def test_links_leading_outside_the_data_folder_are_refused(tmp_path):
    from dagster_project import data_files

    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (outside / "token.txt").write_text("SECRET-TOKEN-123\n")
    (data / "users.csv").write_text("user_id\n1\n")
    (data / "users_alias.csv").symlink_to(data / "users.csv")  # a link inside the folder is fine
    assert len(ingest.read_users(data)) == 2
    (data / "users9.csv").symlink_to(outside / "token.txt")
    with pytest.raises(ingest.DataInputError, match=r"users9\.csv: refused: it is a link that leads outside") as caught:
        ingest.read_users(data)
    assert "SECRET" not in str(caught.value) and "token.txt" not in str(caught.value)
    state = data_files.scan(data)  # the sensor records the link without following or hashing it
    assert state["users9.csv"][2] == data_files.REFUSED and len(state["users.csv"][2]) == 64


def test_non_finite_numbers_are_not_numbers():
    from dagster_project.contract import to_number

    values = pd.Series(["1e309", "-1e309", "inf", "-Infinity", "NaN", "nan", "9" * 400, "2.5", None], dtype="string")
    assert to_number(values).isna().tolist() == [True] * 7 + [False, True]
    assert to_number(pd.Series([1.0, float("inf"), float("nan")])).isna().tolist() == [False, True, True]


@pytest.mark.parametrize("kind, compress", [("gzip", "gzip"), ("bz2", "bz2"), ("xz", "lzma")])
def test_a_file_that_unpacks_to_far_more_than_an_export_is_refused(tmp_path, monkeypatch, kind, compress):
    """A decompression bomb is stopped at its bound, named, and never fills the memory."""
    import importlib

    from dagster_project import file_formats

    monkeypatch.setattr(file_formats, "MIN_BOUND", 1_000_000)  # the real bound is 256 MB; the rule is the same
    body = b"user_id,name\n" + b"1,Ann\n" * 2_000_000  # 12 MB that compress to a few KB
    packed = importlib.import_module(compress).compress(body)
    assert len(packed) * file_formats.EXPANSION_LIMIT < len(body)
    (tmp_path / "users1.csv").write_bytes(packed)
    (tmp_path / "products.json").write_text('[{"product_id": "P1", "name": "Tea"}]')
    with pytest.raises(ingest.DataInputError, match=rf"users1\.csv: refused: this {kind} file unpacks to more than"):
        ingest.read_users(tmp_path)
    small = importlib.import_module(compress).compress(b"user_id,name\n1,Ann\n2,Bob\n")
    (tmp_path / "users1.csv").write_bytes(small)
    assert ingest.read_users(tmp_path)["user_id"].tolist() == ["1", "2"]


def test_a_first_line_with_one_expected_name_quotes_only_that_name(tmp_path):
    """A secret beside a real column name in the first line is counted, never shown."""
    (tmp_path / "users1.csv").write_text("SECRET_TOKEN=hunter2,name\nx,Ann\n")
    with pytest.raises(ingest.DataInputError) as refused:
        ingest.read_users(tmp_path)
    assert "hunter2" not in str(refused.value) and "'name'" in str(refused.value)
    assert "1 other(s)" in str(refused.value)
