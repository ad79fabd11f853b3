"""Dagster's freshness policy for the watched assets (the maximum age is read once, here)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from dagster_project.freshness import max_age_hours

# Whole seconds: Dagster's GraphQL reports the window as an Int and fails on a fraction (the UI too).
MAX_AGE = timedelta(seconds=round(max_age_hours() * 3600))
# The Dagster daemon judges every asset carrying this policy about every 30 s; the UI and the app read its verdict.
FRESHNESS_POLICY = dg.FreshnessPolicy.time_window(fail_window=MAX_AGE)
