"""The Overview's three states on a live Dagster, for the AppTest and browser tests of its verdict.

healthy: the last refresh succeeded and the newest kept model is served; rolled back: an older kept
version is served; failed: the last refresh stopped at the quality gate (a real run through the
webserver, with a minimum quality score of 100 that the sample data cannot reach).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_project import model_store
from streamlit_app.run_requests import RefreshOptions, build_run_config, run_tags
from tests.servers import wait_for_run
from tests.workspace import LiveDagster


def refresh(live: LiveDagster, job: str = "complete_pipeline_job", min_quality_score: float = 50.0) -> str:
    """A refresh as the app starts it (same config and tags); returns the run's final status."""
    config = build_run_config(job, RefreshOptions(min_quality_score=min_quality_score))
    run_id = live.api.submit(job, config, run_tags("tests"))
    return wait_for_run(live.api, run_id)


def make_healthy(live: LiveDagster) -> None:
    """Newest kept model served, and the last refresh (a complete one, so the quality gate passed) succeeded."""
    assert refresh(live) == "SUCCESS"  # publishes a new version, served at once


def make_failed(live: LiveDagster) -> None:
    assert refresh(live, min_quality_score=100.0) == "FAILURE"


@contextmanager
def rolled_back(live: LiveDagster) -> Iterator[Path]:
    """Serve the second-newest kept version; serve the newest again afterwards."""
    kept = model_store.list_versions(live.workspace.models)
    assert len(kept) >= 2, "two trainings are needed to roll back"
    model_store.roll_back(live.workspace.models, kept[1])
    try:
        yield kept[1]
    finally:
        model_store.roll_back(live.workspace.models, kept[0])
