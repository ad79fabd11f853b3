"""The command-line entry points, run as a user runs them."""

import os
import shutil
import subprocess
import sys

import pytest

from dagster_project.recommender import load_model
from tests.workspace import ROOT, cli_env

DAGSTER = shutil.which("dagster", path=os.path.dirname(sys.executable))


def execute(job: str, workspace, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """`dagster job execute` as a user types it, over a workspace with its own Dagster home."""
    command = [DAGSTER, "job", "execute", "-m", "dagster_project.definitions", "-j", job, *extra]
    env = cli_env(workspace, tmp_path)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("job, writes_model", [("ingestion_job", False), ("complete_pipeline_job", True)])
def test_dagster_job_execute(workspace, tmp_path, job, writes_model):
    done = execute(job, workspace, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr + done.stdout
    assert "Merged dataset contains 1383 records" in done.stderr + done.stdout
    assert workspace.model_file.exists() == writes_model


def test_shipped_run_config(workspace, tmp_path):
    done = execute("complete_pipeline_job", workspace, tmp_path, "-c", "config.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_model(workspace.model_file).card.params.factors >= 1


def test_run_dagster_pipeline_script(workspace, tmp_path):
    env = cli_env(workspace, tmp_path)
    done = subprocess.run(
        [sys.executable, "run_dagster_pipeline.py", "--ingestion-only"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ingestion_job: success" in done.stdout
    assert list((workspace.storage / "raw" / "users").glob("*/users_merged.parquet"))
