"""One data change plus one refresh by hand start exactly one run, with the data-folder sensor switched on."""

from __future__ import annotations

import pytest

from streamlit_app.dagster_api import Connection, DagsterAPI
from tests.servers import dagster_server, wait_for_run, wait_until
from tests.workspace import make_workspace


def sensor_ticks_after(api: DagsterAPI, after: float, count: int, timeout: float = 120):
    """Wait until the data-folder sensor has finished `count` ticks after `after` (epoch s); returns the last."""
    seen: list[float] = []

    def newer():
        tick = api.automations()["data_files_sensor"].last_tick
        if tick and tick.timestamp > max([after, *seen]):
            seen.append(tick.timestamp)
        return len(seen) >= count and tick

    return wait_until(newer, timeout, f"{count} sensor ticks", 0.5)


def complete_runs(api: DagsterAPI) -> list:
    return api.runs(limit=50, job_name="complete_pipeline_job")


@pytest.mark.webserver
def test_a_refresh_by_hand_on_new_files_is_the_only_run(tmp_path, sample_source):
    ws = make_workspace(tmp_path, sample_source)
    env = {**ws.env(), "RECOMART_SENSOR_INTERVAL_SECONDS": "2"}
    with dagster_server(tmp_path / "dagster_home", env) as server:
        api = DagsterAPI(Connection(port=server.port))
        sensor = api.set_automation("data_files_sensor", True)
        assert sensor.running and sensor.interval_seconds == 2
        first = sensor_ticks_after(api, 0, 1)
        assert first.skip_reason.startswith("Recorded")

        # New export, and at once a refresh by hand (the app's button does exactly this submit).
        users = ws.data / "users2.csv"
        users.write_bytes(users.read_bytes().replace(b"Ava", b"Eva", 1))
        manual = api.submit("complete_pipeline_job", tags={"recomart/launched_by": "app", "recomart/user": "tests"})
        assert wait_for_run(api, manual) == "SUCCESS"
        finished = api.run(manual).end_time
        last = sensor_ticks_after(api, finished, 2)
        assert last.status == "SKIPPED" and last.skip_reason in (
            "No input file changed.",
            "The newest refresh already read these files.",
        )
        assert [r.run_id for r in complete_runs(api)] == [manual]
        assert "recomart/input_fingerprint" in api.run(manual).tags

        # Control: a change nobody refreshes by hand is refreshed by the sensor, once.
        products = ws.data / "products.json"
        products.write_bytes(products.read_bytes().replace(b"P0001", b"P9001", 1))
        by_sensor = wait_until(
            lambda: [r for r in complete_runs(api) if r.run_id != manual], 120, "the sensor starting a refresh", 1
        )
        assert len(by_sensor) == 1 and by_sensor[0].launched_by == "sensor (data_files_sensor)"
        assert wait_for_run(api, by_sensor[0].run_id) == "SUCCESS"
        sensor_ticks_after(api, api.run(by_sensor[0].run_id).end_time, 2)
        assert len(complete_runs(api)) == 2
        assert not api.set_automation("data_files_sensor", False).running
