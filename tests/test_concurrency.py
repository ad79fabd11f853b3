"""Refreshes at the same time: queued runs execute one at a time, and a run outside the queue waits its turn."""

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamlit_app.dagster_api import Run
from tests.servers import BIN, ROOT, wait_for_run

pytestmark = pytest.mark.webserver


def step_window(run: Run) -> tuple[float, float]:
    steps = [s for s in run.steps if s.start_time and s.end_time]
    return min(s.start_time for s in steps), max(s.end_time for s in steps)


def test_simultaneous_refreshes_run_one_at_a_time(live, trained):
    before = {r.run_id for r in live.api.runs(limit=100)}
    cli = subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions", "-j", "complete_pipeline_job"],
        cwd=ROOT,
        env=live.server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    jobs = ["complete_pipeline_job", "ingestion_job", "complete_pipeline_job", "complete_pipeline_job"]
    with ThreadPoolExecutor(len(jobs)) as pool:
        run_ids = list(pool.map(lambda job: live.api.submit(job, tags={"recomart/launched_by": "app"}), jobs))
    assert len(set(run_ids)) == len(jobs)
    assert [wait_for_run(live.api, r, timeout=400) for r in run_ids] == ["SUCCESS"] * len(jobs)
    assert cli.wait(400) == 0

    runs = [r for r in live.api.runs(limit=100) if r.run_id not in before]
    assert len(runs) == len(jobs) + 1  # nothing lost, the CLI run included
    queued = sorted((r for r in runs if r.run_id in run_ids), key=lambda r: r.start_time)
    for earlier, later in zip(queued, queued[1:]):
        assert earlier.end_time <= later.start_time + 0.5, "queued runs overlapped"
    # The CLI run bypassed the queue; the storage lock kept its steps apart from every other run's.
    windows = sorted(step_window(live.api.run(r.run_id)) for r in runs)
    for (_start_a, end_a), (start_b, _end_b) in zip(windows, windows[1:]):
        assert end_a <= start_b + 0.5, "two runs wrote storage at the same time"
