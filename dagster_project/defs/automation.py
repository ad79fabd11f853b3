"""Settings of the schedule and the sensors, read once: whether they start switched on, how often they look."""

from __future__ import annotations

import os

import dagster as dg

# How often the data-folder sensor looks (seconds); tests shorten it, the default keeps a big folder's polling cheap.
SENSOR_INTERVAL_SECONDS = max(1, int(os.environ.get("RECOMART_SENSOR_INTERVAL_SECONDS", "30")))
# How often the failure sensor looks for failed runs: well inside the minute an alert may take.
FAILURE_SENSOR_INTERVAL_SECONDS = 10
# The run tag where a run records the fingerprint of the input files it read (see data_files.fingerprint).
INPUT_FINGERPRINT_TAG = "recomart/input_fingerprint"


def default_status() -> dg.DefaultScheduleStatus:
    off = os.environ.get("RECOMART_AUTOMATION", "on").lower() in ("off", "0", "false", "no")
    return dg.DefaultScheduleStatus.STOPPED if off else dg.DefaultScheduleStatus.RUNNING
