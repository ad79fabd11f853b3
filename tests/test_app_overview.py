"""The Overview's verdict through AppTest, on a live webserver and daemon: healthy, rolled back, last refresh
failed, and the data newer than the model."""

from __future__ import annotations

import re
import shutil
from datetime import datetime

import pandas as pd
from streamlit.testing.v1 import AppTest

from dagster_project import model_store
from dagster_project.recommender import load_model
from dagster_project.sample_data import generate
from streamlit_app import verdict
from tests.apptest import open_page
from tests.overview_states import make_failed, make_healthy, refresh, rolled_back


def overview() -> AppTest:
    return open_page(fresh=True)


def no_empty_cells(frame) -> None:
    shown = frame.astype(str)
    assert not shown.isin(["None", "nan", "NaT", ""]).any().any(), shown


def test_verdict_healthy_then_rolled_back(verdict_env):
    live = verdict_env
    make_healthy(live)
    card = load_model(live.workspace.model_file).card
    at = overview()
    assert not at.error and not at.warning, [e.value for e in (*at.error, *at.warning)]
    said = at.success[0].value
    assert "All is well" in said and "Customers get the latest model" in said
    assert "The last refresh (Complete pipeline) succeeded" in said and "The data is fresh" in said
    assert "Dagster" not in said and "_job" not in said
    assert any(c.value == "The pipeline is running." for c in at.caption)

    metrics = {m.label: m for m in at.metric}
    new = card.metrics["new"]
    assert metrics["Hit rate"].value == f"{new['svd'].hit_rate:.0%}"
    assert "hit rate@10" in metrics["Hit rate"].help and "NDCG@10" in metrics["Hit rate"].help
    assert any(
        f"For {new['svd'].hit_rate:.0%} of customers, something they bought next was in their list" in c.value
        for c in at.caption
    )
    expected = verdict.compare(new["svd"].ndcg, new["popularity"].ndcg, "best-sellers").word
    assert metrics["Against best-sellers"].value == expected
    assert metrics["Against the previous model"].value in ("Better", "Worse", "About the same")
    assert metrics["Purchases"].value == "3,001" and metrics["Customers"].value == "1,383"

    last = at.dataframe[0].value.set_index("What ran")
    no_empty_cells(last.drop(columns="link"))
    assert last.loc["Complete pipeline", "Result"] == "Succeeded"
    assert last.loc["Complete pipeline", "Started by"] == "tests in the app"
    assert all(re.fullmatch(r"\d+\.\d s|\d+ s|\d+ min( \d+ s)?|–", took) for took in last["Took"]), last["Took"]

    later = datetime.fromisoformat(card.trained_at).timestamp() + 3 * 86400  # three days without a refresh
    stale = verdict.verdict(
        verdict.Facts(now=later, card=card, model_freshness=verdict.judged(later - 3 * 86400, later, 26))
    )
    assert stale.level == verdict.WARN and "The model is stale: trained 3 days ago" in stale.lines[0].text
    assert "more than the 26 hours allowed" in stale.lines[0].text

    with rolled_back(live) as older:
        at = overview()
        assert not at.success
        said = at.warning[0].value
        older_card = load_model(older).card
        trained = datetime.fromisoformat(older_card.trained_at)
        assert "Recommendations work, but something needs attention" in said
        assert "rolled back to the version trained" in said and f"{trained:%d %b %Y %H:%M} UTC" in said
        assert "serve it again on the Model history page" in said
    assert "All is well" in overview().success[0].value  # the newest version is served again


def test_verdict_after_a_failed_refresh(verdict_env):
    live = verdict_env
    make_failed(live)
    at = overview()
    said = at.error[0].value
    assert "Something needs fixing" in said
    assert "The last refresh (Complete pipeline" in said and "failed: Quality score" in said
    assert "below the threshold 100.0" in said and "See the Runs page" in said
    assert "Customers get the latest model" in said  # the gate kept the model in place
    assert any("Runs" in link.label for link in at.get("page_link"))
    last = at.dataframe[0].value.set_index("What ran")
    assert last.loc["Complete pipeline", "Result"] == "Failed"
    make_healthy(live)


def test_model_older_than_the_data_is_a_warning(verdict_env, tmp_path):
    live = verdict_env
    data = live.workspace.data
    saved = tmp_path / "saved"
    shutil.copytree(data, saved)
    try:
        bigger = tmp_path / "bigger"
        generate(bigger, transactions=4500, seed=7)
        shutil.copyfile(bigger / "transactions.csv", data / "transactions.csv")
        lines = len(pd.read_csv(data / "transactions.csv", dtype=str))
        assert refresh(live, "ingestion_job") == "SUCCESS"
        card = load_model(live.workspace.model_file).card
        at = overview()
        said = at.warning[0].value
        assert "The model is older than the data" in said
        assert f"hold {lines:,} purchases" in said and f"but the model has {card.purchases:,}, learnt" in said
        assert {m.label: m.value for m in at.metric}["Purchases"] == f"{lines:,}"
    finally:
        shutil.rmtree(data)
        shutil.copytree(saved, data)
        assert refresh(live, "ingestion_job") == "SUCCESS"
    assert "older than the data" not in overview().success[0].value
    assert model_store.list_versions(live.workspace.models)
