"""Whether the schedule and the sensor start switched on (RECOMART_AUTOMATION=off keeps them off)."""

from __future__ import annotations

import os

import dagster as dg


def default_status() -> dg.DefaultScheduleStatus:
    off = os.environ.get("RECOMART_AUTOMATION", "on").lower() in ("off", "0", "false", "no")
    return dg.DefaultScheduleStatus.STOPPED if off else dg.DefaultScheduleStatus.RUNNING
