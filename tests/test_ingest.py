"""Reading exports: merging, id normalization, and errors that name the file and the fix."""

import json

import pytest

from dagster_project import ingest
from dagster_project.contract import id_key, normalize_ids


def test_users_from_every_file_are_merged_with_their_source(sample_source):
    messages = []
    users = ingest.read_users(sample_source, messages.append)
    assert len(users) == 1383
    assert users[ingest.SOURCE_COLUMN].value_counts().to_dict() == {"users1.csv": 927, "users2.csv": 456}
    assert messages == ["Discovered 2 user data files", "Read 927 records from users1.csv",
                        "Read 456 records from users2.csv", "Merged dataset contains 1383 records"]


def test_ids_are_trimmed_text():
    assert normalize_ids(__import__("pandas").Series([" 17850.0", "A1 ", "", None, 12])).tolist()[:2] == ["17850", "A1"]
    assert id_key(17850) == id_key("17850.0") == id_key(" 17850 ") == "17850"


def test_json_lines_and_extra_columns_are_accepted(tmp_path):
    (tmp_path / "products.json").write_text('{"product_id": 1, "name": "A", "colour": "red"}\n'
                                            '{"product_id": 2, "name": "B", "colour": "blue"}\n')
    products = ingest.read_products(tmp_path)
    assert products["product_id"].tolist() == ["1", "2"]
    assert "colour" in products


def test_semicolon_delimiter_and_bom(tmp_path):
    (tmp_path / "users.csv").write_bytes("\ufeffuser_id;name\n1;Ann\n2;Bo\n".encode("utf-8"))
    users = ingest.read_users(tmp_path)
    assert users["user_id"].tolist() == ["1", "2"] and users["name"].tolist() == ["Ann", "Bo"]


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "No users file"),
    (lambda d: (d / "users.csv").write_text(""), "users.csv: the file is empty"),
    (lambda d: (d / "users.csv").write_text("user_id,name\n"), "users.csv: the file has a header but no data rows"),
    (lambda d: (d / "users.csv").write_text("userid,name\n1,A\n"), "users.csv: required column(s) 'user_id' missing"),
])
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
