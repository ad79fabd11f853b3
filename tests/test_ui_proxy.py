"""The production layout's sign-in proxy (deploy/docker/nginx-dagster-ui.conf) in front of a real webserver.

The shipped nginx configuration is run as it is, with only the upstream and the listen port pointed at
this test's loopback servers: no credentials, no entry; with credentials, only what the UI itself sends.
"""

import base64
import hashlib
import re
import shutil
import subprocess
from contextlib import contextmanager

import pytest
import requests

from tests.attacks import LAUNCH_MUTATION as MUTATION
from tests.servers import free_port, wait_until
from tests.workspace import ROOT

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


@contextmanager
def ui_proxy(upstream_port: int, tmp_path, user: str, password: str):
    site = (ROOT / "deploy/docker/nginx-dagster-ui.conf").read_text()
    site = site.replace("http://webserver:3000", f"http://127.0.0.1:{upstream_port}")
    port = free_port()
    site = re.sub(r"listen 8080;", f"listen 127.0.0.1:{port};", site)
    htpasswd = tmp_path / "dagster-ui.htpasswd"
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    htpasswd.write_text(f"{user}:{{SHA}}{digest}\n")
    site = site.replace("/run/secrets/dagster-ui.htpasswd", str(htpasswd))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"user root; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/site.conf; }}\n"
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _answers(url), 30, "nginx answering")
        assert proc.poll() is None, (tmp_path / "error.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it)")
def test_the_dagster_ui_is_reachable_only_signed_in_and_only_as_the_ui_calls_it(live, tmp_path):
    before = len(live.api.runs(limit=100))
    with ui_proxy(live.server.port, tmp_path, "eng", "s3cret") as url:
        auth = ("eng", "s3cret")
        assert requests.get(url, timeout=10).status_code == 401  # no sign-in, no UI
        assert requests.post(f"{url}/graphql", json={"query": "{ version }"}, timeout=10).status_code == 401
        assert requests.get(url, auth=("eng", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=auth, timeout=10).status_code == 200  # the UI's page
        answer = requests.post(f"{url}/graphql", json={"query": "{ version }"}, auth=auth, timeout=10)
        assert answer.status_code == 200 and answer.json()["data"]["version"]

        # What another web page could make a signed-in engineer's browser send is refused.
        assert requests.get(f"{url}/graphql", params={"query": MUTATION}, auth=auth, timeout=10).status_code == 403
        form = requests.post(f"{url}/graphql", data={"query": MUTATION}, auth=auth, timeout=10)
        assert form.status_code == 403
        cross = requests.post(
            f"{url}/graphql",
            json={"query": MUTATION},
            auth=auth,
            timeout=10,
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
    assert len(live.api.runs(limit=100)) == before  # nothing was launched
