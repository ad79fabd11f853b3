"""Failure alerts: the message, the channels from the environment, and a real failed run reaching real receivers."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dagster_project import alerts
from tests.receivers import smtp_receiver, webhook_receiver
from tests.servers import DagsterServer, free_port, wait_for_run, wait_until
from tests.workspace import make_workspace

GATE_ALERT = alerts.FailureAlert(
    "complete_pipeline_job",
    "validation_report_quality_gate",
    "Quality score 12.00 is below the threshold 50.0: the run stopped before preparation and training.\n"
    "- quantity_valid on transactions: 3001 of 3001 rows fail\nlower the minimum quality score or fix the file",
    "http://dagster.example:3000/runs/abc",
)


def test_no_channel_means_alerts_are_off():
    assert alerts.channels_configured({}) == []
    assert alerts.channels_configured({"RECOMART_ALERT_SMTP_HOST": "mail.example"}) == []  # no recipient
    both = {
        "RECOMART_ALERT_WEBHOOK": "https://hooks.example/T0/B0/secret",
        "RECOMART_ALERT_SMTP_HOST": "mail.example",
        "RECOMART_ALERT_SMTP_TO": "ops@example.com, shop@example.com",
    }
    assert alerts.channels_configured(both) == ["chat webhook", "e-mail"]
    assert alerts.channels(both).smtp_to == ("ops@example.com", "shop@example.com")
    assert alerts.send(GATE_ALERT, {}) == {}


def test_message_names_job_step_error_and_link():
    text = GATE_ALERT.text
    assert text.startswith("RecoMart: Complete refresh (data and model) failed.")
    assert "Failed at: the data-quality gate" in text
    assert "Why: Quality score 12.00 is below the threshold 50.0" in text
    assert "lower the minimum quality score" in text  # the gate's fix travels along
    assert text.endswith("The run in Dagster: http://dagster.example:3000/runs/abc")
    assert alerts.run_url("r1", {"RECOMART_DAGSTER_URL": "https://dagster.shop/"}) == "https://dagster.shop/runs/r1"
    assert alerts.run_url("r1", {}) == "http://127.0.0.1:3000/runs/r1"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a loopback test server
def test_both_channels_deliver_and_login_happens_only_with_a_user():
    with webhook_receiver() as (url, hooks), smtp_receiver({"alerts": "s3cret"}) as (port, mail):
        env = {
            "RECOMART_ALERT_WEBHOOK": f"{url}/services/T0/B0/secret-token",
            "RECOMART_ALERT_SMTP_HOST": "127.0.0.1",
            "RECOMART_ALERT_SMTP_PORT": str(port),
            "RECOMART_ALERT_SMTP_USER": "alerts",
            "RECOMART_ALERT_SMTP_PASSWORD": "s3cret",
            "RECOMART_ALERT_SMTP_FROM": "recomart@shop.example",
            "RECOMART_ALERT_SMTP_TO": "ops@shop.example",
        }
        assert alerts.send(GATE_ALERT, env) == {"chat webhook": "sent", "e-mail": "sent"}
        assert hooks.posts == [("/services/T0/B0/secret-token", {"text": GATE_ALERT.text})]
        assert mail.mails[0]["Subject"] == "RecoMart: Complete refresh (data and model) failed"
        assert mail.envelopes[0] == ("recomart@shop.example", ["ops@shop.example"])
        assert "below the threshold 50.0" in mail.mails[0].get_content()
        # This server requires a login: without a user the mail is refused, and the reason is reported.
        no_user = {k: v for k, v in env.items() if "USER" not in k and "PASSWORD" not in k}
        outcome = alerts.send(GATE_ALERT, no_user)
        assert outcome["chat webhook"] == "sent" and outcome["e-mail"].startswith("SMTP")
        assert len(mail.mails) == 1


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (made by the openssl command line), trusted through SSL_CERT_FILE."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command line is not installed (.ci/run installs it)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_mail_goes_over_starttls_when_the_server_offers_it(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client verifies the server against this certificate
    with smtp_receiver(tls=server_side) as (port, mail):  # refuses any mail sent before STARTTLS
        env = {
            "RECOMART_ALERT_SMTP_HOST": "127.0.0.1",
            "RECOMART_ALERT_SMTP_PORT": str(port),
            "RECOMART_ALERT_SMTP_TO": "ops@shop.example",
        }
        assert alerts.send(GATE_ALERT, env) == {"e-mail": "sent"}
        assert mail.encrypted == [True]
        assert "Failed at: the data-quality gate" in mail.mails[0].get_content()


def test_a_channel_that_fails_is_logged_without_its_secrets(caplog):
    dead = free_port()
    env = {
        "RECOMART_ALERT_WEBHOOK": f"http://127.0.0.1:{dead}/services/T0/B0/secret-token?key=hidden",
        "RECOMART_ALERT_SMTP_HOST": "127.0.0.1",
        "RECOMART_ALERT_SMTP_PORT": str(dead),
        "RECOMART_ALERT_SMTP_USER": "alerts",
        "RECOMART_ALERT_SMTP_PASSWORD": "pa55word-do-not-log",
        "RECOMART_ALERT_SMTP_TO": "ops@shop.example",
    }
    with caplog.at_level(logging.WARNING, logger="dagster_project.alerts"):
        outcome = alerts.send(GATE_ALERT, env)
    assert set(outcome) == {"chat webhook", "e-mail"} and "sent" not in outcome.values()
    logged = caplog.text + repr(outcome)
    assert "webhook at http://127.0.0.1" in caplog.text and "through 127.0.0.1" in caplog.text
    for secret in ("secret-token", "hidden", "pa55word-do-not-log", "/services/"):
        assert secret not in logged


def make_gate_fail(data_dir) -> None:
    """Every transaction with a negative quantity: the quality score falls below the gate (as in test_bad_input)."""
    path = data_dir / "transactions.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.assign(quantity="-1").to_csv(path, index=False)


@pytest.mark.webserver
def test_a_failed_refresh_reaches_both_receivers(tmp_path, sample_source):
    """The daemon's failure sensor sends the gate's own message and the run link to a webhook and a mailbox."""
    ws = make_workspace(tmp_path, sample_source)
    make_gate_fail(ws.data)
    with webhook_receiver() as (url, hooks), smtp_receiver() as (port, mail):
        env = {
            **ws.env(),
            "RECOMART_ALERT_WEBHOOK": f"{url}/services/T0/B0/secret-token",
            "RECOMART_ALERT_SMTP_HOST": "127.0.0.1",
            "RECOMART_ALERT_SMTP_PORT": str(port),
            "RECOMART_ALERT_SMTP_FROM": "recomart@shop.example",
            "RECOMART_ALERT_SMTP_TO": "ops@shop.example",
            # Freshness judged every 2 s against a one-minute limit (Dagster's shortest), so the stale verdict
            # on the raw transactions this run stored shows up here too.
            "RECOMART_MAX_AGE_HOURS": "0.0167",
            "FRESHNESS_DAEMON_INTERVAL_SECONDS": "2",
        }
        server = DagsterServer(tmp_path / "dagster_home", env)
        server.env["RECOMART_DAGSTER_URL"] = server.url
        from streamlit_app.dagster_api import Connection, DagsterAPI

        try:
            server.start_webserver()
            server.start_daemon()
            api = DagsterAPI(Connection(port=server.port))
            alert_sensor = api.automations()["run_failure_alerts"]
            assert alert_sensor.running  # on by default
            assert alert_sensor.alert_channels == ["chat webhook", "e-mail"]  # what the Automation page shows
            run_id = api.submit("complete_pipeline_job")
            assert wait_for_run(api, run_id) == "FAILURE"
            wait_until(lambda: hooks.posts and mail.mails, 90, "the alert reaching the webhook and the mailbox")
            daemon_log = (server.home / "daemon.log").read_text()
            freshness = wait_until(
                lambda: (f := api.freshness())["raw_transactions"].state == "stale" and f,
                120,
                "Dagster judging the raw transactions stale",
                0.5,
            )
        finally:
            server.stop()
    link = f"{server.url}/runs/{run_id}"
    ((path, body),) = hooks.posts
    assert path == "/services/T0/B0/secret-token"
    for text in (body["text"], mail.mails[0].get_content()):
        assert "Complete refresh (data and model) failed" in text
        assert "Failed at: the data-quality gate" in text
        assert "is below the threshold 50.0" in text and "quantity_valid on transactions" in text
        assert link in text
    assert len(hooks.posts) == 1 and len(mail.mails) == 1  # one failure, one message per channel
    assert "secret-token" not in daemon_log
    assert freshness["collaborative_filtering_model"].state == "unknown"  # never trained here
    assert freshness["raw_transactions"].max_age_hours == 60 / 3600  # whole seconds


def evaluate_failure_sensor(instance, result):
    """Evaluate the failure sensor on a failed in-process run, as the daemon would on a run from the queue."""
    import dagster as dg

    from dagster_project.defs.alert_sensor import run_failure_alerts

    (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = record.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    return run_failure_alerts(context)


def test_a_file_that_breaks_the_contract_is_named_in_the_alert(workspace, instance, monkeypatch):
    """Not only the gate: a step that fails on a bad file sends the reader's own message (file and column)."""
    from dagster_project.definitions import defs

    (workspace.data / "products.json").write_text('[{"name": "no id"}]')
    result = defs.resolve_job_def("complete_pipeline_job").execute_in_process(
        run_config=workspace.run_config(), instance=instance, raise_on_error=False
    )
    assert not result.success
    assert evaluate_failure_sensor(instance, result).skip_message.startswith("No alert channel is configured")
    with webhook_receiver() as (url, hooks):
        monkeypatch.setenv("RECOMART_ALERT_WEBHOOK", f"{url}/hook")
        monkeypatch.setenv("RECOMART_DAGSTER_URL", "https://dagster.shop.example")
        evaluate_failure_sensor(instance, result)
    ((_, body),) = hooks.posts
    text = body["text"]
    assert "Failed at: reading the exports" in text
    why = next(line for line in text.splitlines() if line.startswith("Why: "))
    assert "products.json" in why and "product_id" in why and "Failure:" not in why
    assert text.endswith(f"The run in Dagster: https://dagster.shop.example/runs/{result.run_id}")
