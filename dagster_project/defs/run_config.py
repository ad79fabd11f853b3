"""Every knob a run takes, with its default, range and choices, written once.

The assets take these classes as their `config`; the app's Refresh form reads its defaults and limits
from them and checks its values with them; `check_run_config` refuses a run whose values are out of
range when the run starts, before anything is read or written, whoever launched it (the app, the
Dagster UI, GraphQL, the CLI). Dagster's own config schema already refuses wrong types and choices
at launch; ranges are pydantic's, so they are checked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import dagster as dg
import pydantic
from pydantic import Field

from dagster_project.contract import NON_PRODUCT_PATTERN
from dagster_project.validation import DEFAULT_MIN_QUALITY_SCORE


class ValidationConfig(dg.Config):
    min_quality_score: float = Field(default=DEFAULT_MIN_QUALITY_SCORE, ge=0.0, le=100.0)
    """Quality score (0-100) below which the run stops before preparation and training."""


class PreparationConfig(dg.Config):
    non_product_pattern: str = Field(default=NON_PRODUCT_PATTERN, max_length=2_000)
    """Regular expression on product names and codes for lines that are not merchandise (postage, fees);
    they and their transactions are dropped. Empty keeps every product."""

    @pydantic.field_validator("non_product_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class ModelConfig(dg.Config):
    auto_tune: bool = True
    """Choose rank, shrinkage, weighting and re-buy weight on a validation slice (else use the values below)."""
    factors: int = Field(default=32, ge=1, le=512)
    """Rank of the SVD (latent factors)."""
    shrinkage: float = Field(default=1.0, ge=0.0, le=1_000.0)
    """Shrinkage of the singular values, as a multiple of their mean square."""
    weighting: Literal["binary", "log"] = "log"
    """Confidence from purchase counts: 1 per product bought, or log(1 + count)."""
    rebuy_weight: float = Field(default=1.0, ge=0.0, le=100.0)
    """How much a customer's own history counts in lists with re-buys."""
    test_share: float = Field(default=0.2, ge=0.05, le=0.5)
    """Share of the latest transactions held out to measure the model."""


# Which asset (op) takes which config class: what `check_run_config` checks.
OP_CONFIGS: dict[str, type[dg.Config]] = {
    "validation_report": ValidationConfig,
    "prepared_data": PreparationConfig,
    "collaborative_filtering_model": ModelConfig,
}


def field_range(config: type[dg.Config], name: str) -> tuple[float | None, float | None]:
    """The (minimum, maximum) a config field allows, for forms and docs."""
    low = high = None
    for rule in config.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def default(config: type[dg.Config], name: str) -> object:
    return config.model_fields[name].default


def config_problems(run_config: Mapping) -> list[str]:
    """Every out-of-range or invalid knob in a run config, in words that name the asset and field."""
    problems = []
    ops = run_config.get("ops") or {}
    for op, config_class in OP_CONFIGS.items():
        values = (ops.get(op) or {}).get("config") or {}
        try:
            config_class(**values)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                problems.append(f"{op}.{where}: {error['msg']} (got {error.get('input')!r:.60})")
    return problems


def check_run_config(run_config: Mapping) -> None:
    """Refuse the run (a `dg.Failure` naming each bad value) before any data is touched."""
    problems = config_problems(run_config)
    if problems:
        raise dg.Failure(description="The run's configuration is out of range, so nothing was run: "
                                     + "; ".join(problems) + ".")
