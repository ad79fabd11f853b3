"""The Automation page: the schedule and the sensors in words, switched by operators, seen by viewers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from streamlit.testing.v1 import AppTest

from streamlit_app import automation_words
from streamlit_app.dagster_api import Automation, Tick
from tests.attacks import USERS
from tests.workspace import APP

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC).timestamp()
SCHEDULE_STATE = """
query ($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) { ... on Schedule { scheduleState { status } } }
}
"""


def schedule(running: bool, **kw) -> Automation:
    next_tick = datetime(2026, 11, 28, 2, 0, tzinfo=UTC).timestamp() if running else None
    return Automation(
        "daily_pipeline", "schedule", running, cron="0 2 * * *", timezone="UTC", next_tick=next_tick, **kw
    )


def sensor(tick: Tick | None, running: bool = True) -> Automation:
    return Automation("data_files_sensor", "sensor", running, interval_seconds=30, last_tick=tick)


def test_words_for_the_schedule_and_the_sensors():
    assert (
        automation_words.describe(schedule(True), NOW).headline
        == "Nightly refresh at 02:00 — on, next 28 Nov 02:00 UTC"
    )
    off = automation_words.describe(schedule(False), NOW)
    assert off.headline == "Nightly refresh at 02:00 — off" and not off.on
    ran = schedule(True, last_tick=Tick("SUCCESS", NOW - 12 * 3600, run_ids=("r1",)))
    assert automation_words.describe(ran, NOW).last == "Last started 27 Nov 02:00 UTC: started a refresh."

    quiet = sensor(Tick("SKIPPED", NOW - 125, "No input file changed."))
    assert (
        automation_words.describe(quiet, NOW).headline
        == "Refresh when new files arrive — on, last check 2 minutes ago: no new files"
    )
    cases = {
        Tick(
            "SKIPPED", NOW, "The newest refresh already read these files."
        ): "already read by a refresh started by hand",
        Tick("SKIPPED", NOW, "Input files changed (users2.csv); refreshing at the next check."): "new files seen "
        "(users2.csv): a refresh starts at the next check",
        Tick(
            "SKIPPED", NOW, "A refresh is queued or running (abc); checking again after it."
        ): "waiting for the refresh",
        Tick("SUCCESS", NOW, run_ids=("r1",)): "started a refresh",
        Tick(
            "FAILURE", NOW, error="PermissionError: data folder\nTraceback ..."
        ): "it failed: PermissionError: data folder",
    }
    for tick, words in cases.items():
        assert words in automation_words.describe(sensor(tick), NOW).headline
    assert automation_words.describe(sensor(None, running=False), NOW).headline == "Refresh when new files arrive — off"
    quiet_alerts = Automation(
        "run_failure_alerts",
        "sensor",
        True,
        last_tick=Tick("SKIPPED", NOW - 5, "Sensor function returned an empty result"),
    )
    assert (
        automation_words.describe(quiet_alerts, NOW).headline
        == "Tell people when a refresh fails — on, last check just now: no failed refresh"
    )


def test_alert_line_says_whether_anyone_hears_of_failures():
    on, line = automation_words.alerts_words(["chat webhook", "e-mail"], True)
    assert on and line == "Alerts are on: a failed refresh is reported by chat webhook and e-mail."
    on, line = automation_words.alerts_words([], True)
    assert not on and line.startswith("Alerts are off: nobody is told when a refresh fails")
    assert "RECOMART_ALERT_WEBHOOK" in automation_words.ALERT_SETUP
    on, line = automation_words.alerts_words(["e-mail"], False)
    assert not on and "switched off below" in line


def schedule_status(live) -> str:
    """What the Dagster UI reads: a GraphQL query of its own, not through the app's API module."""
    selector = next(iter(live.api.automations().values())).selector
    variables = {"selector": {k: selector[k] for k in ("repositoryName", "repositoryLocationName")}}
    variables["selector"]["scheduleName"] = "daily_pipeline"
    answer = requests.post(
        f"{live.server.url}/graphql", json={"query": SCHEDULE_STATE, "variables": variables}, timeout=10
    ).json()
    return answer["data"]["scheduleOrError"]["scheduleState"]["status"]


def page(secrets_users: dict | None = None, name: str | None = None, password: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if secrets_users:
        at.secrets["users"] = secrets_users
        at.run()
        at.text_input(key="sign_in_name").set_value(name)
        at.text_input(key="sign_in_password").set_value(password)
        at.button[0].click().run()
    else:
        at.run()
    at.switch_page("app_pages/automation.py").run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    kinds = ("markdown", "success", "info", "warning", "error", "caption", "title")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind) if hasattr(e, "value"))


@pytest.mark.webserver
def test_operator_switches_the_nightly_refresh_and_dagster_agrees(app_env, monkeypatch):
    monkeypatch.delenv("RECOMART_ALERT_WEBHOOK", raising=False)
    monkeypatch.delenv("RECOMART_ALERT_SMTP_HOST", raising=False)
    assert schedule_status(app_env) == "STOPPED"  # tests start with automation off
    at = page()
    text = shown(at)
    assert "Nightly refresh at 02:00 — off" in text
    assert "Refresh when new files arrive — off" in text
    assert "Tell people when a refresh fails — on" in text
    assert "Alerts are off: nobody is told when a refresh fails" in text
    try:
        at.button(key="switch_daily_pipeline").click().run()
        assert schedule_status(app_env) == "RUNNING"
        assert "Nightly refresh is now switched on." in shown(at)
        assert "Nightly refresh at 02:00 — on, next " in shown(at)
        assert at.button(key="switch_daily_pipeline").label == "Switch off"

        at.button(key="switch_daily_pipeline").click().run()
        assert schedule_status(app_env) == "STOPPED"
        assert "Nightly refresh is now switched off." in shown(at)
        assert "Nightly refresh at 02:00 — off" in shown(at)
    finally:
        app_env.api.set_automation("daily_pipeline", False)

    monkeypatch.setenv("RECOMART_ALERT_WEBHOOK", "https://hooks.example/T0/B0/hook-token-7f3a")
    at = page()
    # The app's own setting does not count: the pipeline service, which sends the alerts, has no channel.
    assert "Alerts are off: nobody is told when a refresh fails" in shown(at)
    assert "hook-token-7f3a" not in shown(at) and "hooks.example" not in shown(at)


@pytest.mark.webserver
def test_viewers_see_the_state_and_cannot_switch(app_env):
    at = page(USERS, "vic", "view-secret")
    assert "Nightly refresh at 02:00 — off" in shown(at)
    assert not [b for b in at.button if b.key and b.key.startswith("switch_")]
    assert "Only operators can switch these" in shown(at)

    # An operator demoted after the page was drawn: the click is checked against the role in force.
    at = page(USERS, "olga", "op-secret")
    assert at.button(key="switch_daily_pipeline").label == "Switch on"
    at.secrets["users"] = {**USERS, "olga": {**USERS["olga"], "role": "viewer"}}
    at.button(key="switch_daily_pipeline").click().run()
    assert schedule_status(app_env) == "STOPPED"
    assert "now switched on" not in shown(at) and "Only operators can switch these" in shown(at)
    assert not [b for b in at.button if b.key and b.key.startswith("switch_")]
