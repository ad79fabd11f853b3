"""The app under concurrent sessions: N websocket sessions, each asking for M page runs, on loopback.

Each session speaks Streamlit's own protocol (a BackMsg asking for a page run, ForwardMsgs until
`script_finished`), so every request is a real script run on the real server, as a browser tab
would cause. Counted as errors: exceptions shown on a page, error banners, and no answer within the
timeout. Loops are bounded by sessions x requests.

    python -m bench.app_load --sessions 20 --requests 50      (starts Dagster and the app itself)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent

PAGES = ("", "runs", "data_quality", "recommendations")  # "" is the default page (Overview)


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        import numpy as np

        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([float("nan")])
        return (
            f"{len(self.latencies_ms)} page runs answered, {len(self.errors)} errors; latency p50 "
            f"{np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms"
        )


def _page_run(ws, page: str, timeout: float) -> list[str]:
    """Ask for one page run; return the problems it showed (exceptions, error banners)."""
    message = BackMsg()
    message.rerun_script.query_string = ""
    message.rerun_script.page_name = page
    ws.send(message.SerializeToString())
    problems = []
    deadline = time.monotonic() + timeout
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        kind = forward.WhichOneof("type")
        if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
            element = forward.delta.new_element
            if element.WhichOneof("type") == "exception":
                problems.append(f"{page or 'overview'}: exception {element.exception.message}")
            elif element.WhichOneof("type") == "alert" and element.alert.format == Alert.ERROR:
                problems.append(f"{page or 'overview'}: error banner {element.alert.body[:120]}")
        if kind == "script_finished":
            return problems


def session(url: str, requests: int, index: int, timeout: float) -> LoadResult:
    result = LoadResult()
    try:
        with connect(
            url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"], open_timeout=timeout
        ) as ws:
            for i in range(requests):
                page = PAGES[(index + i) % len(PAGES)]
                start = time.perf_counter()
                problems = _page_run(ws, page, timeout)
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.errors.extend(problems)
    except Exception as exc:  # a dropped connection or a timeout is an error of the run, not of the bench
        result.errors.append(f"session {index}: {type(exc).__name__}: {exc}")
    return result


def run_load(url: str, sessions: int, requests: int, timeout: float = 60) -> LoadResult:
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        results = list(pool.map(lambda i: session(url, requests, i, timeout), range(sessions)))
    total = LoadResult()
    for r in results:
        total.latencies_ms += r.latencies_ms
        total.errors += r.errors
    return total


def main() -> None:
    from streamlit_app.dagster_api import Connection, DagsterAPI
    from tests.servers import dagster_server, streamlit_server, wait_for_run
    from tests.workspace import make_workspace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recomart-load-"))
    try:
        ws = make_workspace(work / "ws", ROOT / "data")
        with dagster_server(work / "home", ws.env()) as server:
            api = DagsterAPI(Connection(port=server.port))
            assert wait_for_run(api, api.submit("complete_pipeline_job")) == "SUCCESS"
            env = {**ws.env(), "DAGSTER_HOST": "127.0.0.1", "DAGSTER_PORT": str(server.port)}
            with streamlit_server(env, work / "streamlit.log") as url:
                start = time.perf_counter()
                result = run_load(url, args.sessions, args.requests)
                wall = time.perf_counter() - start
        print(
            f"{args.sessions} sessions x {args.requests} page runs (Overview, Runs, Data quality, Recommendations "
            f"in turn) in {wall:.1f} s: {result.summary()}"
        )
        for error in result.errors[:10]:
            print("  ", error)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
