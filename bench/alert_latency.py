"""How long after a run fails its alert arrives: a live webserver and daemon, a local webhook receiver,
and N runs that the quality gate stops (threshold 99.9 on the sample data).

Measured from the run's end (Dagster's endTime) to the webhook call's arrival; the sensor looks every
FAILURE_SENSOR_INTERVAL_SECONDS, so that interval bounds most of the wait.

    python -m bench.alert_latency --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from dagster_project.defs.automation import FAILURE_SENSOR_INTERVAL_SECONDS
from dagster_project.sample_data import generate


def measure(runs: int) -> list[float]:
    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.receivers import webhook_receiver
    from tests.servers import dagster_server, wait_for_run, wait_until
    from tests.workspace import make_workspace

    gate = {"ops": {"validation_report": {"config": {"min_quality_score": 99.9}}}}
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, webhook_receiver() as (url, hooks):
        root = Path(tmp)
        generate(root / "sample")
        ws = make_workspace(root / "ws", root / "sample")
        arrivals = hooks.arrived
        with dagster_server(root / "home", {**ws.env(), "RECOMART_ALERT_WEBHOOK": f"{url}/hook"}) as server:
            api = DagsterAPI(Connection(port=server.port))
            for i in range(runs):
                run_id = api.submit("complete_pipeline_job", run_config=gate)
                assert wait_for_run(api, run_id) == "FAILURE"
                wait_until(lambda n=i + 1: len(arrivals) >= n, 120, "the alert arriving", 0.05)
                latencies.append(arrivals[i] - api.run(run_id).end_time)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    latencies = measure(args.runs)
    print(
        f"{len(latencies)} failed runs, alert after the failure: min {min(latencies):.1f} s, "
        f"median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
        f"(sensor interval {FAILURE_SENSOR_INTERVAL_SECONDS} s)"
    )


if __name__ == "__main__":
    main()
