"""How old the model and the raw transactions may get before they count as stale.

Read once, from `RECOMART_MAX_AGE_HOURS` (default 26: a daily refresh plus two hours of slack). The
assets carry it as Dagster's own freshness policy, so the Dagster UI and the app (which reads the
policy's verdict over GraphQL) judge with the same number.
"""

from __future__ import annotations

import os

MAX_AGE_ENV = "RECOMART_MAX_AGE_HOURS"
DEFAULT_MAX_AGE_HOURS = 26.0
MIN_MAX_AGE_HOURS = 1 / 60  # Dagster refuses freshness windows under a minute
# The assets that carry a freshness policy: what is served, and the newest input it was made from.
WATCHED_ASSETS = ("collaborative_filtering_model", "raw_transactions")


def max_age_hours(environ: dict[str, str] | None = None) -> float:
    """The configured maximum age in hours; a value out of range is refused, naming the setting."""
    raw = (environ if environ is not None else os.environ).get(MAX_AGE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not MIN_MAX_AGE_HOURS <= hours <= 24 * 366:
        raise ValueError(
            f"{MAX_AGE_ENV}={raw!r} is not a number of hours from {MIN_MAX_AGE_HOURS:.4f} (one minute, "
            "Dagster's shortest freshness window) to 8784 (a year): fix or unset it."
        )
    return hours
