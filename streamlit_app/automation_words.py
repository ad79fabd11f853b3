"""The schedule and the sensors in plain words, for the Automation page.

Pure functions over `dagster_api.Automation` (no Streamlit), so the words are tested without a page:
"Nightly refresh at 02:00 — on, next 28 Nov 02:00 UTC"; "Refresh when new files arrive — on, last check
2 minutes ago: no new files".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from streamlit_app.dagster_api import Automation, Tick

TITLES = {
    "daily_pipeline": "Nightly refresh",
    "data_files_sensor": "Refresh when new files arrive",
    "run_failure_alerts": "Tell people when a refresh fails",
}
PURPOSES = {
    "daily_pipeline": "Reads the export files and retrains the model every night, so the recommendations "
    "never get older than a day.",
    "data_files_sensor": "Looks at the data folder regularly; when export files are added or changed, it "
    "starts one refresh (none when a refresh started by hand already read them).",
    "run_failure_alerts": "When any refresh fails, sends a message saying what failed, why, and a link to the run.",
}
# Why a check started nothing, from the sensors' own reasons, in words.
SKIP_WORDS = (
    (r"^No input file changed", "no new files"),
    (r"^Recorded (\d+) input files", r"started watching \1 export files"),
    (r"^Input files changed \((.*)\)", r"new files seen (\1): a refresh starts at the next check"),
    (r"^A refresh is queued or running", "new files seen: waiting for the refresh under way"),
    (r"^The newest refresh already read these files", "new files, already read by a refresh started by hand"),
    (r"^No alert channel is configured", "a refresh failed, but no alert channel is set up"),
    (r"^Initiating run_failure_alerts", "started watching for failed refreshes"),
    (r"^No new runs", "no failed refresh"),
    (r"^Sensor function returned an empty result", "nothing new"),
)
NOTHING_RETURNED = "Sensor function returned an empty result"  # Dagster's words for a quiet tick


def when(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%d %b %H:%M} UTC"


def ago(epoch: float, now: float) -> str:
    seconds = max(0.0, now - epoch)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def cron_words(cron: str | None) -> str | None:
    """'at 02:00' for a daily cron ('0 2 * * *'); None for anything else (then the cron is shown in a tooltip)."""
    match = re.fullmatch(r"(\d{1,2}) (\d{1,2}) \* \* \*", (cron or "").strip())
    return f"at {int(match[2]):02d}:{int(match[1]):02d}" if match else None


def title(a: Automation) -> str:
    base = TITLES.get(a.name, a.name.replace("_", " ").capitalize())
    if a.kind == "schedule" and (at := cron_words(a.cron)):
        return f"{base} {at}" + ("" if (a.timezone or "UTC") == "UTC" else f" ({a.timezone})")
    return base


def tick_words(tick: Tick, name: str = "") -> str:
    """What one check or scheduled start did."""
    if name == "run_failure_alerts" and tick.status == "SUCCESS":
        return "reported a failed refresh"
    if tick.status == "FAILURE":
        first = next((line for line in (tick.error or "").splitlines() if line.strip()), "no reason recorded")
        return f"it failed: {first.strip()[:200]}"
    if tick.run_ids:
        n = len(tick.run_ids)
        return "started a refresh" if n == 1 else f"started {n} refreshes"
    reason = (tick.skip_reason or "").strip()
    if name == "run_failure_alerts" and (not reason or reason.startswith(NOTHING_RETURNED)):
        return "no failed refresh"
    for pattern, words in SKIP_WORDS:
        if re.match(pattern, reason):
            return re.sub(pattern + r".*", words, reason, count=1, flags=re.S)
    return reason.rstrip(".") or ("done" if tick.status == "SUCCESS" else "nothing new")


@dataclass(frozen=True)
class Line:
    """One automation on the page: headline, the verdict's level ("on"/"off") and what it did last."""

    headline: str
    on: bool
    last: str


def describe(a: Automation, now: float) -> Line:
    state = "on" if a.running else "off"
    if a.kind == "schedule":
        nxt = f", next {when(a.next_tick)}" if a.running and a.next_tick else ""
        last = f"Last started {when(a.last_tick.timestamp)}: {tick_words(a.last_tick, a.name)}." if a.last_tick else ""
        if not last:
            last = "It has not run yet." if a.running else "It does not run while it is off."
        return Line(f"{title(a)} — {state}{nxt}", a.running, last)
    detail = ""
    if a.last_tick is not None:
        detail = f", last check {ago(a.last_tick.timestamp, now)}: {tick_words(a.last_tick, a.name)}"
    elif a.running:
        detail = ", first check within a minute"
    every = f"Checks every {a.interval_seconds} seconds while on." if a.interval_seconds else ""
    return Line(f"{title(a)} — {state}{detail}", a.running, every)


ALERT_SETUP = (
    "Alerts are sent by the pipeline service (the Dagster daemon), from its environment: "
    "`RECOMART_ALERT_WEBHOOK` (a Slack-compatible incoming webhook) and/or `RECOMART_ALERT_SMTP_HOST`, "
    "`_PORT`, `_USER`, `_PASSWORD`, `_FROM`, `_TO` (e-mail; STARTTLS when the server offers it); "
    "`RECOMART_DAGSTER_URL` for the run links. This page shows the channels the pipeline service has "
    "(the failure sensor reports them), so the app's own environment needs none of these."
)


def alerts_words(channels: list[str], sensor_on: bool | None) -> tuple[bool, str]:
    """(alerts really go out, the sentence saying so and what to do)."""
    if not channels:
        return False, (
            "Alerts are off: nobody is told when a refresh fails. Ask whoever runs RecoMart to set up a chat "
            "channel or an e-mail address for alerts."
        )
    where = " and ".join(channels)
    if sensor_on is False:
        return False, f"Alerts are off: the failure alert is switched off below (it would send by {where})."
    return True, f"Alerts are on: a failed refresh is reported by {where}."
