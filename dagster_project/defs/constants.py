"""Defaults for the pipeline's knobs (run config overrides them)."""

from dagster_project.validation import DEFAULT_MIN_QUALITY_SCORE as MIN_QUALITY_SCORE  # noqa: F401
TEST_SHARE = 0.2
FACTORS = 32
SHRINKAGE = 1.0
WEIGHTING = "log"
REBUY_WEIGHT = 1.0
