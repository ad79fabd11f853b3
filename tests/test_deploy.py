"""Deployment files: they parse, the Dagster instance files pass Dagster's own validation, no secret is inline."""

import shutil

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from tests.workspace import ROOT

INSTANCE_FILES = [ROOT / "dagster.yaml", ROOT / "deploy/postgres/dagster.yaml", ROOT / "deploy/docker/dagster.yaml"]
PG_ENV = {
    "DAGSTER_PG_HOST": "db",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "u",
    "DAGSTER_PG_PASSWORD": "p",
    "DAGSTER_PG_DB": "d",
}


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_instance_files_pass_dagster_validation(path, tmp_path, monkeypatch):
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    shutil.copyfile(path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"]["enabled"] is False
    if "postgres" in config.get("storage", {}):
        db = yaml.safe_load(path.read_text())["storage"]["postgres"]["postgres_db"]
        assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # from the environment, never inline


def test_invalid_instance_file_is_rejected(tmp_path):
    (tmp_path / "dagster.yaml").write_text("storage:\n  postgres:\n    no_such_key: 1\n")
    with pytest.raises(Exception, match="no_such_key|postgres"):
        dagster_instance_config(str(tmp_path))


def test_compose_file():
    compose = yaml.safe_load((ROOT / "deploy/docker/docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "code_location", "webserver", "daemon", "app", "dagster_ui"} <= set(services)
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"dagster_ui", "app"}  # the Dagster webserver is never published itself
    assert all(
        port.startswith("${RECOMART_PUBLISH_HOST:-127.0.0.1}:") for ports in published.values() for port in ports
    )
    proxy = (ROOT / "deploy/docker/nginx-dagster-ui.conf").read_text()
    assert (
        "auth_basic_user_file /run/secrets/dagster-ui.htpasswd;" in proxy
        and "proxy_pass http://webserver:3000" in proxy
    )
    assert services["app"]["secrets"][0]["target"] == "/srv/recomart/.streamlit/secrets.toml"
    assert {s["file"] for s in compose["secrets"].values()} <= {
        "./secrets/streamlit-secrets.toml",
        "./secrets/dagster-ui.htpasswd",
    }
    assert "${DAGSTER_PG_PASSWORD" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert services["code_location"]["command"][:3] == ["dagster", "api", "grpc"]
    workspace = yaml.safe_load((ROOT / "deploy/docker/workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == 4000


def test_helm_values():
    values = yaml.safe_load((ROOT / "deploy/k8s/values.yaml").read_text())
    assert values["dagsterWebserver"]["replicaCount"] >= 2
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP" and values["dagsterWebserver"]["enableReadOnly"]
    assert values["ingress"]["enabled"] and "auth-url" in " ".join(values["ingress"]["annotations"])
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "dagster_project.definitions"]
    assert values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] == 1


def test_secrets_never_enter_the_image():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in (
        ".streamlit/secrets.toml",
        ".env",
        "storage/",
        "models/",
        ".dagster_home/",
        ".venv/",
        "deploy/docker/secrets/",
    ):
        assert entry in ignored, entry
    copies = [line for line in (ROOT / "deploy/docker/Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert not any(
        ".streamlit " in line or line.rstrip().endswith(".streamlit") or "secrets" in line for line in copies
    )
    assert "COPY .streamlit/config.toml ./.streamlit/config.toml" in copies
