"""Uploading exports on the Refresh page in a real headless Chromium: a bad file is refused with its rule and
example rows and never reaches the data folder; a good one lands, the old files are kept, and the refresh it
starts succeeds with its before → after figures."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from dagster_project import uploads
from tests.browser import MAIN, at_width, heading, keyed, nav_link, open_app, settle, shot, whole_page
from tests.servers import streamlit_server, wait_for_run
from tests.workspace import exports, folder_bytes

pytestmark = [pytest.mark.browser, pytest.mark.webserver]
# Where screenshots at a desktop and a phone width go for people to look at (test-artifacts/ by default).
SHOTS = Path(os.environ.get("RECOMART_SHOTS_DIR", Path(__file__).resolve().parent.parent / "test-artifacts"))


def widths(page, name: str) -> None:
    """Whole-page screenshots at 1280 and 400 px wide, for people to look at."""
    for width in (1280, 400):
        settle(page)
        whole_page(page, SHOTS / f"{name}-{width}.png", width)
    at_width(page, 1280)


def test_upload_a_bad_then_a_good_file(live, trained, browser, tmp_path):
    data = live.workspace.data
    original = folder_bytes(data)  # kept sets of earlier tests on the live folder included
    inputs = exports(data)
    earlier = {k.name for k in uploads.kept_sets(data)}
    bad = tmp_path / "bad" / "transactions.csv"
    bad.parent.mkdir()
    purchases = pd.read_csv(data / "transactions.csv", dtype=str)
    purchases["user_id"] = "999999"
    purchases.to_csv(bad, index=False)
    good = tmp_path / "good"
    good.mkdir()
    (good / "users1.csv").write_bytes((data / "users1.csv").read_bytes())
    row = '"{id}","New Customer {i}","new{i}@example.com",30,"F","ES","2026-11-01"\n'
    extra = "".join(row.format(id=9200 + i, i=i) for i in range(3))
    (good / "users2.csv").write_text((data / "users2.csv").read_text() + extra)

    try:
        with streamlit_server(live.app_env(), tmp_path / "streamlit.log") as url:
            page = open_app(browser, url)
            at_width(page, 1280)
            main = page.locator(MAIN)
            heading(page, "Headline figures").wait_for(timeout=60_000)
            settle(page)
            nav_link(page, "Refresh").click()
            heading(page, "Upload new exports").wait_for(timeout=60_000)
            settle(page)
            # Before starting, the page lists the exports a refresh reads.
            assert main.get_by_text("The exports it will read").count() == 1
            widths(page, "refresh-start")

            picker = keyed(page, "upload_files_0").locator("input[type='file']")
            picker.set_input_files(str(bad))
            refused = main.get_by_test_id("stAlertContentError").filter(has_text="These files cannot be used")
            refused.wait_for(timeout=60_000)
            settle(page)
            assert "below the minimum of 50" in refused.inner_text()
            assert main.get_by_text("user_known").count() >= 1  # the rule, with its example rows below it
            assert main.get_by_role("button", name="Accept these files").count() == 0
            assert folder_bytes(data) == original
            widths(page, "upload-refused")

            keyed(page, "upload_files_0").get_by_role("button", name="Remove transactions.csv").click()
            refused.wait_for(state="detached", timeout=30_000)
            settle(page)
            picker.set_input_files([str(good / "users1.csv"), str(good / "users2.csv")])
            main.get_by_test_id("stAlertContentSuccess").filter(has_text="These files can be used").wait_for(
                timeout=60_000
            )
            settle(page)
            widths(page, "upload-accepted-check")
            main.get_by_role("button", name="Accept these files").click()
            main.get_by_test_id("stAlertContentSuccess").filter(has_text="A refresh has started").wait_for(
                timeout=60_000
            )
            assert (data / "users2.csv").read_bytes() == (good / "users2.csv").read_bytes()
            (kept,) = [k for k in uploads.kept_sets(data) if k.name not in earlier]
            assert hashlib.sha256((kept.path / "users2.csv").read_bytes()).hexdigest() == inputs["users2.csv"]
            run_link = main.get_by_role("link", name="Open in the Dagster UI")
            run_id = run_link.get_attribute("href").rsplit("/", 1)[1]
            main.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in").wait_for(timeout=240_000)
            settle(page)
            assert live.api.run(run_id).status == "SUCCESS"
            assert main.get_by_test_id("stMetric").filter(has_text="Customers").inner_text().count("1,386") == 1
            assert main.get_by_role("link", name="See the recommendations").count() == 1
            shot(page, "refresh_upload")
            widths(page, "refresh-done")
    finally:  # the live instance as the other tests expect it: the original files, and a model trained on them
        if exports(data) != inputs:
            uploads.restore(data, uploads.kept_sets(data)[0].name)
        assert exports(data) == inputs
        rerun = live.api.submit("complete_pipeline_job", tags={"recomart/launched_by": "app", "recomart/user": "tests"})
        assert wait_for_run(live.api, rerun) == "SUCCESS"
