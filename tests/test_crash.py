"""Killed runs lose nothing: SIGKILL while features or the model are being published, then recover."""

import os
import signal
import subprocess

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dagster_project.fileio import own_temp_files, sha256_of
from dagster_project.recommender import load_model
from tests.servers import BIN, wait_until
from tests.workspace import APP, ROOT, cli_env

pytestmark = pytest.mark.slow


def start_run(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions", "-j", "complete_pipeline_job"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def temp_files(folder):
    return own_temp_files(folder)


def everything_loads(ws) -> None:
    for parquet in ws.storage.rglob("*.parquet"):
        assert len(pd.read_parquet(parquet)) > 0, parquet
    model = load_model(ws.model_file)
    assert len(model.recommend(model.user_ids[0])) == 10


@pytest.mark.parametrize("target, folder", [("features", "storage/features"), ("collaborative_filtering-", "models")])
def test_sigkill_mid_write_keeps_last_good_outputs(workspace, tmp_path, monkeypatch, target, folder):
    env = cli_env(workspace, tmp_path)
    with open(tmp_path / "good.log", "wb") as log:
        assert start_run(env, log).wait(300) == 0
    model_before = sha256_of(workspace.model_file)
    features_before = {p.name: sha256_of(p) for p in (workspace.storage / "features").glob("*.parquet")}

    with open(tmp_path / "killed.log", "wb") as log:
        proc = start_run({**env, "RECOMART_WRITE_PAUSE": f"60:{target}"}, log)
        try:
            wait_until(lambda: temp_files(workspace.root / folder), 120, f"a half-published file in {folder}")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert temp_files(workspace.root / folder)  # the kill really happened mid-write

    assert sha256_of(workspace.model_file) == model_before
    assert {p.name: sha256_of(p) for p in (workspace.storage / "features").glob("*.parquet")} == features_before
    everything_loads(workspace)
    for key, value in workspace.env().items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/recommendations.py").run()
    at.text_input(key="customer_query").set_value(load_model(workspace.model_file).user_ids[0]).run()
    assert len([d.value for d in at.dataframe if "why" in d.value.columns][0]) == 10  # the customer's list

    with open(tmp_path / "next.log", "wb") as log:
        assert start_run(env, log).wait(300) == 0, (tmp_path / "next.log").read_text()[-2000:]
    assert "temporary file(s) a stopped run left" in (tmp_path / "next.log").read_text()
    assert not temp_files(workspace.storage) and not temp_files(workspace.models)
    assert sha256_of(workspace.model_file) != model_before
    everything_loads(workspace)
