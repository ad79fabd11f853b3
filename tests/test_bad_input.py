"""Bad input, table-driven, through the real assets (docs/BAD_INPUT.md lists the same cases).

Every case either runs clean (bad rows dropped and counted, with reasons) or fails with a message
naming the file, row or column and the fix. Whenever a run fails, the last good run's prepared data,
features and the served model are byte-for-byte what they were.
"""

import gzip
import json
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dagster_project.definitions import defs
from dagster_project.fileio import sha256_of
from dagster_project.recommender import load_model
from tests.workspace import APP, Workspace, make_workspace


def rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame], **to_csv) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False, **to_csv)


def set_rows(column: str, value: str, rows: slice = slice(0, 5)) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[rows], column] = value
        return frame

    return change


def products(data: Path) -> list[dict]:
    return json.loads((data / "products.json").read_text())


@dataclass
class Case:
    name: str
    setup: Callable[[Path], None]
    fails: str | None = None  # regex the failure message must match; None = the run succeeds
    drops: dict | None = None  # {asset: {reason: rows}} expected in the prepared assets' metadata
    check: Callable[[Workspace], None] | None = None
    check_run: Callable[[object, dg.DagsterInstance], None] | None = None  # on the run's result and events
    max_seconds: float | None = None  # the whole run, success or failure


def _latin1(d: Path) -> None:
    text = (d / "users1.csv").read_text().replace("Ava ", "Zoë ", 1).replace("Liam", "Jörg")
    (d / "users1.csv").write_bytes(text.encode("latin-1"))


def _multiline_names(d: Path) -> None:
    rewrite(d / "users1.csv", set_rows("name", 'Smith, Jr. "Bob"\nsecond line', slice(0, 3)))


def _ragged(d: Path) -> None:
    lines = (d / "transactions.csv").read_text().splitlines()
    lines[5] = lines[5] + ',"extra",7'
    (d / "transactions.csv").write_text("\n".join(lines) + "\n")


def _wrapped_json(d: Path) -> None:
    (d / "products.json").write_text(json.dumps({"products": products(d)}))


def _json_lines(d: Path) -> None:
    items = products(d)
    (d / "products.json").unlink()
    (d / "products_catalog.json").write_text("\n".join(json.dumps(p) for p in items) + "\n")


def _messy_ids(d: Path) -> None:
    def change(tx: pd.DataFrame) -> pd.DataFrame:
        tx.loc[tx.index[:10], "product_id"] = "  " + tx.loc[tx.index[:10], "product_id"].str.lower() + " "
        known = tx["user_id"].str.fullmatch(r"\d{4}")
        tx.loc[known[known].index[:10], "user_id"] = tx.loc[known[known].index[:10], "user_id"] + ".0"
        return tx

    rewrite(d / "transactions.csv", change)


def _conflicting_duplicates(d: Path) -> None:
    items = products(d)
    items.append({**items[0], "name": "Another description", "price": 1.0})
    (d / "products.json").write_text(json.dumps(items))


def _absurd_values(d: Path) -> None:
    rewrite(d / "transactions.csv", set_rows("quantity", "1000000000", slice(0, 4)))
    items = products(d)
    items[1]["price"] = -5
    (d / "products.json").write_text(json.dumps(items))
    rewrite(d / "users1.csv", set_rows("age", "500", slice(0, 3)))


def _timestamp_formats(d: Path) -> None:
    def change(tx: pd.DataFrame) -> pd.DataFrame:
        tx.loc[tx.index[0:3], "timestamp"] = "2026-03-01T10:00:00+02:00"
        tx.loc[tx.index[3:6], "timestamp"] = "03/01/2026 10:00"
        tx.loc[tx.index[6:9], "timestamp"] = "1 Mar 2026 10:00"
        tx.loc[tx.index[9:11], "timestamp"] = "2099-01-01 00:00:00"
        return tx

    rewrite(d / "transactions.csv", change)


def _quarter_without_user(d: Path) -> None:
    def change(tx: pd.DataFrame) -> pd.DataFrame:
        tx.loc[tx.index[: len(tx) // 4], "user_id"] = ""
        return tx

    rewrite(d / "transactions.csv", change)


def _one_user(d: Path) -> None:
    for f in d.glob("users*.csv"):
        f.unlink()
    (d / "users.csv").write_text("user_id,name\n1001,Only Customer\n")
    rewrite(d / "transactions.csv", lambda tx: tx.assign(user_id="1001"))


def _one_product(d: Path) -> None:
    (d / "products.json").write_text(json.dumps([{"product_id": "P0001", "name": "The only product", "price": 3}]))
    rewrite(d / "transactions.csv", lambda tx: tx.assign(product_id="P0001"))


def _postage_lines(d: Path) -> None:
    items = products(d)
    items += [{"product_id": "POST", "name": "POSTAGE", "price": 18}, {"product_id": "M", "name": "Manual", "price": 1}]
    (d / "products.json").write_text(json.dumps(items))
    rewrite(d / "transactions.csv", set_rows("product_id", "POST", slice(0, 40)))


def _postage_never_recommended(ws: Workspace) -> None:
    model = load_model(ws.model_file)
    assert "POST" not in set(model.items["product_id"])
    assert "POST" not in set(model.recommend("unknown-user", 20)["product_id"])


def _required_columns_only(d: Path) -> None:
    for f in d.glob("users*.csv"):
        rewrite(f, lambda frame: frame[["user_id"]])
    rewrite(d / "transactions.csv", lambda tx: tx[["user_id", "product_id", "timestamp"]])
    (d / "products.json").write_text(
        json.dumps([{"product_id": p["product_id"], "name": p["name"]} for p in products(d)])
    )


def _model_loads(ws: Workspace) -> None:
    model = load_model(ws.model_file)
    user = model.user_ids[0]
    model.recommend(user)
    model.recommend("unknown-user")


def _excel_renamed(d: Path) -> None:
    with zipfile.ZipFile(d / "transactions.csv", "w") as workbook:  # what an .xlsx is: a zip of XML parts
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.xml", "<workbook/>")


def _gzip_renamed(d: Path) -> None:
    (d / "users1.csv").write_bytes(gzip.compress((d / "users1.csv").read_bytes()))


def _gzip_named(d: Path) -> None:
    (d / "users2.csv.gz").write_bytes(gzip.compress((d / "users2.csv").read_bytes()))
    (d / "users2.csv").unlink()


def _all_users_read(ws: Workspace) -> None:
    from dagster_project.ingest import read_users

    assert len(read_users(ws.data)) == 1383
    _model_loads(ws)


def _deep_json_array(d: Path) -> None:
    items = products(d)
    text = json.dumps(items)
    (d / "products.json").write_text(text[:-1] + ", " + "[" * 100_000 + "]" * 100_000 + "]")


def _deep_json_lines(d: Path) -> None:
    lines = [json.dumps(p) for p in products(d)]
    lines[3] = lines[3][:-1] + ', "tags": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (d / "products.json").write_text("\n".join(lines) + "\n")


def _product_id_twice(d: Path) -> None:
    text = (d / "transactions.csv").read_text().splitlines()
    text[0] += ',"product_id"'
    (d / "transactions.csv").write_text("\n".join([text[0], *(line + ',"P0001"' for line in text[1:])]) + "\n")


def _null_product_id(d: Path) -> None:
    items = products(d)
    items[5]["product_id"] = None
    (d / "products.json").write_text(json.dumps(items))


def _catalogue_is_clean(ws: Workspace) -> None:
    model = load_model(ws.model_file)
    ids = model.items["product_id"]
    assert ids.notna().all() and ids.map(type).eq(str).all()
    assert not ids.str.contains(r"[{}\[\]]").any()
    assert model.popular(500)["product_id"].notna().all()
    for product in ids:
        model.similar_items(product, 3)


def _objects_as_ids_and_names(d: Path) -> None:
    items = products(d)
    items[1]["product_id"] = {"code": "P0002"}
    items[2]["product_id"] = ["P0003"]
    items[3]["name"] = {"en": "A name"}
    items[4]["name"] = ["A", "name"]
    items[5]["name"] = True
    (d / "products.json").write_text(json.dumps(items))


def _non_finite_numbers(d: Path) -> None:
    values = ["1e309", "inf", "-Infinity", "NaN", "nan"]
    rewrite(d / "transactions.csv", lambda tx: tx.assign(unit_price=[*values, *tx["unit_price"][len(values) :]]))
    text = (d / "products.json").read_text()
    items = json.loads(text)
    items[0]["price"] = "PLACEHOLDER"
    (d / "products.json").write_text(json.dumps(items).replace('"PLACEHOLDER"', "1e309"))


def _figures_are_finite(ws: Workspace) -> None:
    users = pd.read_parquet(ws.storage / "features" / "user_features.parquet")
    items = pd.read_parquet(ws.storage / "features" / "item_features.parquet")
    prepared = pd.read_parquet(ws.storage / "prepared" / "products.parquet")
    assert users["total_spend"].map(lambda v: v == v and abs(v) < 1e300).all()
    assert items["revenue"].map(lambda v: v == v and abs(v) < 1e300).all()
    assert prepared["price_scaled"].dropna().nunique() > 50  # not every scaled price squashed to 0
    assert pd.isna(prepared.set_index("product_id").loc["P0001", "price"])
    _model_loads(ws)


def _ancient_years(d: Path) -> None:
    rewrite(d / "transactions.csv", set_rows("timestamp", "0001-01-01 00:00:00", slice(0, 3)))
    rewrite(d / "transactions.csv", set_rows("timestamp", "1500-06-01 10:00:00", slice(3, 6)))


def _recency_is_plausible(ws: Workspace) -> None:
    users = pd.read_parquet(ws.storage / "features" / "user_features.parquet")
    assert users["recency_days"].max() < 2000


def _same_timestamp(d: Path) -> None:
    rewrite(d / "transactions.csv", lambda tx: tx.assign(timestamp="2026-06-01 12:00:00"))


def _measured_at_random(ws: Workspace) -> None:
    card = load_model(ws.model_file).card
    assert card.measured and card.holdout.protocol == "random split"
    assert card.holdout.evaluated_users["new"] >= 10 and card.metrics["new"]["svd"].users >= 10
    page = app_page(ws, "recommendations")
    assert any("Measured on a random 20% of the purchases" in m.value for m in page.markdown)


def _labelled_random(result, instance) -> None:
    meta = instance.get_latest_materialization_event(
        dg.AssetKey("collaborative_filtering_model")
    ).asset_materialization.metadata
    assert meta["holdout_protocol"].value == "random split" and meta["measured"].value is True
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level >= 30]
    assert any("random split" in w for w in warnings), warnings


def _few_customers(d: Path) -> None:
    rewrite(
        d / "transactions.csv", lambda tx: tx.assign(user_id=[("1001", "1002", "1003")[i % 3] for i in range(len(tx))])
    )


def _not_measured(ws: Workspace) -> None:
    card = load_model(ws.model_file).card
    assert card.measured is False and "new" not in card.metrics
    assert card.not_measured["new"].startswith("not measured")
    _model_loads(ws)
    overview, recommendations = app_page(ws, "overview"), app_page(ws, "recommendations")
    assert {m.label: m.value for m in overview.metric}["Hit rate"] == "not measured"
    assert any("the served model was not measured" in w.value for w in overview.warning)
    assert recommendations.expander[0].label.endswith("· not measured")
    assert any(w.value.startswith("New products: not measured") for w in recommendations.warning)
    metrics = [d.value for d in recommendations.dataframe if "NDCG@10" in d.value.columns]
    assert not metrics or "0.0" not in str(metrics[0])


def app_page(ws: Workspace, page: str):
    """A page of the app over this workspace's model, with no Dagster webserver (the pages must still say it)."""
    import os

    from streamlit.testing.v1 import AppTest

    saved = {k: os.environ.get(k) for k in ("RECOMART_MODELS_DIR", "DAGSTER_PORT")}
    os.environ.update({"RECOMART_MODELS_DIR": str(ws.models), "DAGSTER_PORT": "1"})
    try:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        if page != "overview":
            at.switch_page(f"app_pages/{page}.py")
            at.run()
        assert not at.exception, at.exception
        return at
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def _labelled_not_measured(result, instance) -> None:
    meta = instance.get_latest_materialization_event(
        dg.AssetKey("collaborative_filtering_model")
    ).asset_materialization.metadata
    assert meta["measured"].value is False and "ndcg_at_10" not in meta
    assert meta["evaluation"].value.startswith("not measured")
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level >= 30]
    assert any("not measured" in w for w in warnings), warnings


def _huge_name(d: Path) -> None:
    items = products(d)
    items[7]["name"] = "x" * 5_000_000
    (d / "products.json").write_text(json.dumps(items))


def _huge_header(d: Path) -> None:
    header = ",".join(f"column_{i}" for i in range(300_000))
    (d / "transactions.csv").write_text(header + "\n" + (d / "transactions.csv").read_text())


def _wide_header(d: Path) -> None:
    lines = (d / "transactions.csv").read_text().splitlines()
    extra = ",".join(f"c{i}" for i in range(5_000))
    (d / "transactions.csv").write_text("\n".join([lines[0] + "," + extra, *lines[1:]]) + "\n")


SECRET = "SECRET-TOKEN-123"


def _link_outside(d: Path) -> None:
    outside = d.parent / "outside"
    outside.mkdir()
    (outside / "token.txt").write_text(SECRET + "\n")
    (d / "users9.csv").symlink_to(outside / "token.txt")


def _secret_first_line(d: Path) -> None:
    (d / "users9.csv").write_text(SECRET + "\nanother line\n")


def _secret_not_echoed(result, instance) -> None:
    logged = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
    assert "users9.csv" in logged
    assert SECRET not in logged and SECRET not in failure_message(result)


CASES = [
    Case("missing data folder", lambda d: shutil.rmtree(d), r"Data folder .*data does not exist.*RECOMART_DATA_DIR"),
    Case("no products file", lambda d: (d / "products.json").unlink(), r"No products file in .*'products\*\.json'"),
    Case("empty file", lambda d: (d / "users2.csv").write_text(""), r"users2\.csv: the file is empty"),
    Case(
        "header only",
        lambda d: (d / "transactions.csv").write_text("user_id,product_id,timestamp\n"),
        r"transactions\.csv: the file has a header but no data rows",
    ),
    Case(
        "required column misspelled",
        lambda d: (d / "users1.csv").write_text((d / "users1.csv").read_text().replace("user_id", "User ID", 1)),
        r"users1\.csv: required column\(s\) 'user_id' missing.*Did you mean 'User ID' for 'user_id'",
    ),
    Case(
        "semicolon delimiter",
        lambda d: rewrite(d / "transactions.csv", lambda f: f, sep=";"),
        drops={"prepared_transactions": {"user_known": 30}},
    ),
    Case("latin-1 encoding", _latin1),
    Case("UTF-8 with BOM", lambda d: (d / "users2.csv").write_bytes(b"\xef\xbb\xbf" + (d / "users2.csv").read_bytes())),
    Case("quoted fields with commas and newlines", _multiline_names),
    Case("ragged rows", _ragged, r"transactions\.csv: the CSV cannot be parsed .*line 6.*as many fields as the header"),
    Case(
        "truncated JSON",
        lambda d: (d / "products.json").write_text((d / "products.json").read_text()[:500]),
        r"products\.json: invalid JSON at line \d+, column \d+",
    ),
    Case(
        "JSON that is not a list of objects", _wrapped_json, r"products\.json: expected a JSON array .*under 'products'"
    ),
    Case("JSON Lines", _json_lines),
    Case("ids with spaces, other case, floats", _messy_ids, drops={"prepared_transactions": {"product_known": 15}}),
    Case(
        "duplicate ids with conflicting attributes",
        _conflicting_duplicates,
        drops={"prepared_products": {"product_id_unique": 1}},
    ),
    Case("absurd values", _absurd_values, drops={"prepared_transactions": {"quantity_valid": 34}}),
    Case(
        "timestamps in several formats and zones, some in the future",
        _timestamp_formats,
        drops={"prepared_transactions": {"timestamp_valid": 17}},
    ),
    Case(
        "everything invalid",
        lambda d: rewrite(d / "transactions.csv", lambda tx: tx.assign(quantity="-1")),
        r"Quality score .* below the threshold 50.0.*quantity_valid on transactions: 3001 of 3001 rows",
    ),
    Case(
        "a quarter of transactions without a user",
        _quarter_without_user,
        drops={"prepared_transactions": {"transaction_ids_present": 750}},
    ),
    Case(
        "most transactions without a user",
        lambda d: rewrite(d / "transactions.csv", set_rows("user_id", "", slice(0, 2500))),
        r"below the threshold 50.0.*transaction_ids_present on transactions: 2500 of 3001 rows"
        r".*lower the minimum quality",
    ),
    Case(
        "codes that are not products (postage, manual)",
        _postage_lines,
        drops={"prepared_products": {"not_merchandise": 2}},
        check=_postage_never_recommended,
    ),
    Case("required columns only", _required_columns_only, drops={"prepared_transactions": {"user_known": 30}}),
    Case("one user", _one_user, check=_model_loads),
    Case("one product", _one_product, check=_model_loads),
    Case(
        "Excel workbook renamed transactions.csv",
        _excel_renamed,
        r"transactions\.csv: this looks like an Excel workbook \(\.xlsx\), not a CSV export\. Export the transactions "
        r"as CSV",
    ),
    Case("gzip file renamed users1.csv", _gzip_renamed, check=_all_users_read),
    Case("gzip export named users2.csv.gz", _gzip_named, check=_all_users_read),
    Case("deeply nested JSON array", _deep_json_array, r"products\.json: the JSON is nested more than 32 levels deep"),
    Case(
        "deeply nested JSON Lines",
        _deep_json_lines,
        r"products\.json: line 4: the JSON is nested more than 32 levels deep",
    ),
    Case(
        "product_id twice in the header",
        _product_id_twice,
        r"transactions\.csv: the column 'product_id' appears 2 times in the header \(columns 3, 7\)",
    ),
    Case(
        "product_id null",
        _null_product_id,
        drops={"prepared_products": {"product_id_present": 1}},
        check=_catalogue_is_clean,
    ),
    Case(
        "objects and lists as product ids and names",
        _objects_as_ids_and_names,
        drops={"prepared_products": {"product_id_present": 2, "product_name_present": 3}},
        check=_catalogue_is_clean,
    ),
    Case(
        "non-finite numbers (1e309, inf, NaN)",
        _non_finite_numbers,
        drops={"prepared_transactions": {"unit_price_valid": 5}},
        check=_figures_are_finite,
    ),
    Case(
        "timestamps in the years 1 and 1500",
        _ancient_years,
        drops={"prepared_transactions": {"timestamp_valid": 21}},
        check=_recency_is_plausible,
    ),
    Case("every timestamp identical", _same_timestamp, check=_measured_at_random, check_run=_labelled_random),
    Case("three customers", _few_customers, check=_not_measured, check_run=_labelled_not_measured),
    Case(
        "a 5 MB product name",
        _huge_name,
        r"products\.json: item 8, field 'name': the value is 5,000,000 characters long, over the limit of 65,536",
    ),
    Case(
        "a 2.9 MB header line with 300,000 columns",
        _huge_header,
        r"transactions\.csv: the first line is longer than 256 KB",
        max_seconds=20,
    ),
    Case(
        "a header with 5,000 columns",
        _wide_header,
        r"transactions\.csv: the header has more than 1,000 columns \(5,006\)",
        max_seconds=20,
    ),
    Case(
        "a link to a file outside the data folder",
        _link_outside,
        r"users9\.csv: refused: it is a link that leads outside the data folder",
        check_run=_secret_not_echoed,
    ),
    Case(
        "a file whose first line is a secret",
        _secret_first_line,
        r"users9\.csv: the header has 1 column\(s\) and none of them is one RecoMart expects",
        check_run=_secret_not_echoed,
    ),
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, sample_source) -> Workspace:
    """A workspace after one good run: the outputs every failing case must leave untouched."""
    ws = make_workspace(tmp_path_factory.mktemp("baseline"), sample_source)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def("complete_pipeline_job")
            .execute_in_process(run_config=ws.run_config(), instance=instance)
            .success
        )
    return ws


def fingerprints(ws: Workspace) -> dict[str, str]:
    stored = [*sorted((ws.storage / "prepared").rglob("*")), *sorted((ws.storage / "features").glob("*"))]
    files = [ws.model_file, *(f for f in stored if f.is_file())]
    return {str(f.relative_to(ws.root)): sha256_of(f) for f in files}


def failure_message(result) -> str:
    messages = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    messages += [e.description or "" for e in result.get_asset_check_evaluations() if not e.passed]
    return "\n".join(messages)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, baseline: Workspace, tmp_path):
    ws = Workspace(tmp_path, tmp_path / "data", tmp_path / "storage", tmp_path / "models")
    for src, dst in ((baseline.data, ws.data), (baseline.storage, ws.storage), (baseline.models, ws.models)):
        shutil.copytree(src, dst)
    before = fingerprints(ws)
    case.setup(ws.data)
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
            run_config=ws.run_config(), instance=instance, raise_on_error=False
        )
        if case.max_seconds:
            assert time.monotonic() - started < case.max_seconds
        if case.check_run:
            case.check_run(result, instance)
        if case.fails:
            assert not result.success
            message = failure_message(result)
            assert re.search(case.fails, message, re.S), message
            assert "Traceback" not in message
            assert fingerprints(ws) == before, "a failed run changed the last good outputs"
            return
        assert result.success, failure_message(result)
        for asset, expected in (case.drops or {}).items():
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            dropped = event.asset_materialization.metadata["dropped_by_reason"].value
            for reason, rows in expected.items():
                assert dropped.get(reason) == rows, (reason, dropped)
        model_key = str(ws.model_file.relative_to(ws.root))
        assert fingerprints(ws)[model_key] != before[model_key]
        (case.check or _model_loads)(ws)


def test_latin1_names_are_decoded(tmp_path, sample_source):
    from dagster_project import ingest

    ws = make_workspace(tmp_path, sample_source)
    _latin1(ws.data)
    names = ingest.read_users(ws.data)["name"]
    assert names.str.contains("Zoë").any() and names.str.contains("Jörg").any()


def test_messy_ids_match_the_clean_ones(tmp_path, sample_source):
    from dagster_project import ingest

    ws = make_workspace(tmp_path, sample_source)
    _messy_ids(ws.data)
    tx = ingest.read_transactions(ws.data)
    assert tx["product_id"].str.fullmatch(r"P\d{4}|P-UNKNOWN").all()
    assert not tx["user_id"].str.endswith(".0").any()
