"""Real servers for the tests: a Dagster webserver and daemon, and the Streamlit app, on free loopback ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from tests.workspace import APP, ROOT

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll `check` until it returns a truthy value; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def start(cmd: list[str], env: dict, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a server in its own session, so stopping the group stops its children too."""
    handle = open(log, "wb")  # noqa: SIM115 - the server writes to it for as long as it runs
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def dagster_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "DAGSTER_HOME": str(home), "RECOMART_AUTOMATION": "off"}


class DagsterServer:
    """dagster-webserver + dagster-daemon over a temporary DAGSTER_HOME."""

    def __init__(self, home: Path, env: dict[str, str], instance_yaml: Path = ROOT / "dagster.yaml"):
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(instance_yaml, home / "dagster.yaml")
        self.env = dagster_env(home, env)
        self.port = free_port()
        self.web: subprocess.Popen | None = None
        self.daemon: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_webserver(self) -> None:
        self.web = start(
            [
                sys.executable,
                "-m",
                "dagster_project.guarded_webserver",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-m",
                "dagster_project.definitions",
            ],
            self.env,
            self.home / "webserver.log",
        )
        wait_until(
            lambda: _answers(f"{self.url}/server_info") or self._died(self.web, "webserver"),
            120,
            "the Dagster webserver answering",
        )

    def start_daemon(self) -> None:
        self.daemon = start(
            [str(BIN / "dagster-daemon"), "run", "-m", "dagster_project.definitions"],
            self.env,
            self.home / "daemon.log",
        )

    def _died(self, proc, name):
        if proc.poll() is not None:
            log = (self.home / f"{name}.log").read_text()[-3000:]
            raise RuntimeError(f"The Dagster {name} exited ({proc.returncode}):\n{log}")
        return False

    def stop(self) -> None:
        for proc in (self.daemon, self.web):
            if proc is not None:
                stop(proc)


@contextmanager
def dagster_server(home: Path, env: dict[str, str], instance_yaml: Path = ROOT / "dagster.yaml"):
    server = DagsterServer(home, env, instance_yaml)
    try:
        server.start_webserver()
        server.start_daemon()
        yield server
    finally:
        server.stop()


@contextmanager
def streamlit_server(
    env: dict[str, str],
    log: Path,
    extra_args: tuple[str, ...] = (),
    address: str | None = "127.0.0.1",
    cwd: Path = ROOT,
):
    """The app on a free port; `address=None` leaves the listen address to Streamlit (every interface)."""
    port = free_port()
    where = ("--server.address", address) if address is not None else ()
    proc = start(
        [
            str(BIN / "streamlit"),
            "run",
            str(APP),
            *where,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            *extra_args,
        ],
        {**os.environ, **env},
        log,
        cwd,
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/_stcore/health"), 60, "Streamlit answering")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def wait_for_run(api, run_id: str, timeout: float = 300) -> str:
    """Poll a run until it finishes; returns its final status."""
    finished = ("SUCCESS", "FAILURE", "CANCELED")
    return wait_until(lambda: (s := api.run_status(run_id)) in finished and s, timeout, f"run {run_id} finishing", 0.5)
