"""Failure alerts: the message, the channels configured in the environment, and sending.

No Dagster import: the run-failure sensor (defs/alert_sensor.py) hands over plain values, the app asks
`channels_configured()` to say whether alerts are on, and the tests call it directly.

Channels, from the environment (the daemon's, where the sensor runs):
- `RECOMART_ALERT_WEBHOOK`: a Slack-compatible incoming webhook; the message is POSTed as {"text": ...}.
- `RECOMART_ALERT_SMTP_HOST` (+ `_PORT`, default 587; `_USER`, `_PASSWORD`: login only when a user is
  set; `_FROM`; `_TO`, comma-separated): e-mail, with STARTTLS whenever the server offers it.
The webhook URL's path and the SMTP password are secrets: no log line or error names them.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
# What people call the jobs and the steps (the Dagster names are in the run link).
JOB_LABELS = {
    "complete_pipeline_job": "Complete refresh (data and model)",
    "ingestion_job": "Data check (read the exports only)",
}
STEP_LABELS = {
    "raw_data": "reading the exports",
    "raw_transactions": "reading the purchase files",
    "validation_report": "the data-quality report",
    "validation_report_quality_gate": "the data-quality gate",
    "prepared_data": "preparing the data",
    "prepared_transactions": "preparing the purchases",
    "feature_tables": "building the features",
    "collaborative_filtering_model": "training the model",
}


@dataclass(frozen=True)
class Channels:
    """Where alerts go; every field empty means alerts are off."""

    webhook: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return (["chat webhook"] if self.webhook else []) + (["e-mail"] if self.smtp_host and self.smtp_to else [])


def channels(environ: Mapping[str, str] | None = None) -> Channels:
    env = os.environ if environ is None else environ

    def value(name: str) -> str | None:
        return (env.get(f"RECOMART_ALERT_{name}") or "").strip() or None

    port = value("SMTP_PORT")
    return Channels(
        webhook=value("WEBHOOK"),
        smtp_host=value("SMTP_HOST"),
        smtp_port=int(port) if port and port.isdigit() else 587,
        smtp_user=value("SMTP_USER"),
        smtp_password=env.get("RECOMART_ALERT_SMTP_PASSWORD") or None,
        smtp_from=value("SMTP_FROM"),
        smtp_to=tuple(a.strip() for a in (value("SMTP_TO") or "").split(",") if a.strip()),
    )


def channels_configured(environ: Mapping[str, str] | None = None) -> list[str]:
    """The configured channels in plain words ("chat webhook", "e-mail"); empty means alerts are off."""
    return channels(environ).names


def run_url(run_id: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    base = (env.get("RECOMART_DAGSTER_URL") or DEFAULT_DAGSTER_URL).rstrip("/")
    return f"{base}/runs/{run_id}"


def first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "no error message recorded")


@dataclass(frozen=True)
class FailureAlert:
    """One failed run, in words: subject line and body."""

    job: str
    step: str | None
    error: str | None
    link: str

    @property
    def job_label(self) -> str:
        return JOB_LABELS.get(self.job, self.job)

    @property
    def subject(self) -> str:
        return f"RecoMart: {self.job_label} failed"

    @property
    def text(self) -> str:
        step = STEP_LABELS.get(self.step, self.step) if self.step else "before any step ran"
        lines = [
            f"{self.subject}.",
            f"Failed at: {step}",
            f"Why: {first_line(self.error)}",
        ]
        rest = [line for line in (self.error or "").splitlines()[1:] if line.strip()]
        if rest:
            details = "\n".join(rest)
            lines.append("Details:\n" + (details[:1500] + " …" if len(details) > 1500 else details))
        lines.append(f"The run in Dagster: {self.link}")
        return "\n".join(lines)


def _webhook_site(url: str) -> str:
    """The webhook's scheme and host only: its path is the secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def _redacted(exc: BaseException, *secrets: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def send_webhook(url: str, text: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("RECOMART_ALERT_WEBHOOK must be an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def send_mail(config: Channels, subject: str, text: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.smtp_from or config.smtp_user or "recomart@localhost"
    message["To"] = ", ".join(config.smtp_to)
    message.set_content(text)
    smtp_class = smtplib.SMTP_SSL if config.smtp_port == 465 else smtplib.SMTP
    with smtp_class(config.smtp_host, config.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        smtp.ehlo()
        if smtp_class is smtplib.SMTP and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password or "")
        smtp.send_message(message)


def send(alert: FailureAlert, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Send to every configured channel; {channel: "sent" or why it failed (secrets removed)}. Never raises."""
    config = channels(environ)
    outcome: dict[str, str] = {}
    if config.webhook:
        try:
            send_webhook(config.webhook, alert.text)
            outcome["chat webhook"] = "sent"
        except Exception as exc:  # one channel down must not keep the other from sending
            parts = urlsplit(config.webhook)
            outcome["chat webhook"] = _redacted(exc, config.webhook, parts.path, parts.query)
            log.warning("Alert to the webhook at %s failed: %s", _webhook_site(config.webhook), outcome["chat webhook"])
    if config.smtp_host and config.smtp_to:
        try:
            send_mail(config, alert.subject, alert.text)
            outcome["e-mail"] = "sent"
        except Exception as exc:
            outcome["e-mail"] = _redacted(exc, config.smtp_password)
            log.warning("Alert e-mail through %s failed: %s", config.smtp_host, outcome["e-mail"])
    return outcome
