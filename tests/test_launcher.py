"""`./run_pipeline.sh up` serves the app where RECOMART_BIND_HOST says, and the Dagster webserver on loopback only.

Dagster OSS has no sign-in, and its GraphQL API launches runs: other machines reach it only through an
authenticating proxy, never because the app was opened to them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess

import pytest

from tests.servers import BIN, _answers, free_port, start, wait_until
from tests.workspace import ROOT, make_workspace

pytestmark = pytest.mark.webserver


def network_address() -> str | None:
    """An IPv4 address of this machine other than loopback, or None when it has none."""
    found = []
    if shutil.which("ip"):
        listing = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
        found += [fields[3].split("/")[0] for fields in map(str.split, listing.splitlines()) if len(fields) > 3]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it only picks the outgoing address
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    with contextlib.suppress(OSError):
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    return next((a for a in found if not ipaddress.ip_address(a).is_loopback), None)


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def child_groups(pid: int) -> set[int]:
    """Process groups of the direct children of `pid` (the launcher starts each server in its own session)."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout
    return {int(pgid) for _, ppid, pgid in map(str.split, listing.splitlines()) if int(ppid) == pid}


def still_running(groups: set[int]) -> list[str]:
    """Processes of these groups that have not exited (zombies waiting to be reaped do not count)."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in listing.splitlines()]
    return [
        f"{row[0]} {row[3][:100]}"
        for row in rows
        if len(row) == 4 and int(row[1]) in groups and not row[2].startswith("Z")
    ]


def stop(launcher: subprocess.Popen, groups: set[int]) -> list[str]:
    """SIGTERM to the launcher's group, as a service manager would; returns what is still running after."""
    if launcher.poll() is None:
        os.killpg(launcher.pid, signal.SIGTERM)  # its trap stops each server's session and waits for them
    try:
        launcher.wait(60)
        # Servers' own children (Dagster's code servers) finish shutting down just after the launcher returns.
        wait_until(lambda: not still_running(groups), 30, "every process the launcher started exiting")
        return []
    except (subprocess.TimeoutExpired, TimeoutError):
        left = still_running(groups | {launcher.pid}) or ["./run_pipeline.sh itself"]
        for pgid in groups | {launcher.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        launcher.wait(5)
        return left


def test_webserver_stays_on_loopback_when_the_app_is_served_to_others(tmp_path, sample_source):
    address = network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback, so nothing could reach it from elsewhere")
    ws = make_workspace(tmp_path / "ws", sample_source)
    dagster_port, app_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_PG_")}
    env.update(
        ws.env(),
        RECOMART_BIND_HOST="0.0.0.0",
        RECOMART_VENV=str(BIN.parent),
        RECOMART_SKIP_INSTALL="1",
        RECOMART_AUTOMATION="off",
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        DAGSTER_PORT=str(dagster_port),
        APP_PORT=str(app_port),
    )
    log = tmp_path / "up.log"
    launcher = start([str(ROOT / "run_pipeline.sh"), "up"], env, log)  # its own session: see the stop below

    def running() -> bool:
        if launcher.poll() is not None:
            raise RuntimeError(f"./run_pipeline.sh up exited ({launcher.returncode}):\n{log.read_text()[-3000:]}")
        return False

    groups: set[int] = set()
    try:
        # No model yet: `up` trains once (in-process, through `dagster job execute`), then starts the servers.
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{dagster_port}/server_info") or running(),
            300,
            "the Dagster webserver answering on 127.0.0.1",
        )
        wait_until(
            lambda: _answers(f"http://{address}:{app_port}/_stcore/health") or running(),
            120,
            f"the app answering on {address}, as RECOMART_BIND_HOST=0.0.0.0 asks",
        )
        groups = child_groups(launcher.pid)
        assert not accepts(address, dagster_port), (
            f"the Dagster webserver accepts connections on {address}:{dagster_port}; it must bind 127.0.0.1 only"
        )
        assert "Dagster UI: http://127.0.0.1:" in log.read_text()
    finally:
        left = stop(launcher, groups)
    assert not left, f"still running after SIGTERM to ./run_pipeline.sh up: {left}"
    assert not accepts("127.0.0.1", dagster_port) and not accepts("127.0.0.1", app_port)
