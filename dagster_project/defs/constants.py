"""Defaults for the pipeline's knobs (run config overrides them)."""

MIN_QUALITY_SCORE = 80.0
TEST_SHARE = 0.2
FACTORS = 32
SHRINKAGE = 1.0
WEIGHTING = "log"
REBUY_WEIGHT = 1.0
