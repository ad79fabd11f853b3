"""Every knob a run takes, with its default, range and choices, written once.

The assets take these classes as their `config` (and the readers' limits as the `input_limits`
resource); the app's Refresh form reads its defaults and limits from them and checks its values with
them; `check_run_config` refuses a run whose values are out of range when the run starts, before
anything is read or written, whoever launched it (the app, the Dagster UI, GraphQL, the CLI).
Dagster's own config schema already refuses wrong types and choices at launch; ranges are pydantic's,
so they are checked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Literal

import dagster as dg
import pydantic
from pydantic import Field

from dagster_project.contract import LIMITS, NON_PRODUCT_PATTERN, InputLimits
from dagster_project.model_update import UpdatePolicy
from dagster_project.training import TrainingSettings
from dagster_project.validation import DEFAULT_MIN_QUALITY_SCORE

TRAINING = TrainingSettings()  # the training defaults a run starts from
UPDATES = UpdatePolicy()  # when a refresh of new data only trains again instead of updating
EARLIEST_PLAUSIBLE = date(1900, 1, 1)


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
        """Python's `re` for the syntax, and RE2 (Arrow's engine, linear time) for safety: a pattern RE2
        cannot run (look-arounds, back-references) could take hours on one product name."""
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            re.compile(value)
            pc.match_substring_regex(pa.array([""], pa.large_string()), value)
        except (re.error, pa.ArrowInvalid) as exc:
            raise ValueError(f"not a regular expression RecoMart can run in linear time ({exc})") from None
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
    popularity_exponent: float = Field(default=0.0, ge=0.0, le=2.0)
    """Popularity debiasing without tuning: scores divided by (buyers + 1) to this power."""
    neighbour_weight: float = Field(default=0.0, ge=0.0, le=10.0)
    """Weight of the blend with item-item neighbours without tuning (0: the factor model alone)."""
    min_coverage: float = Field(default=TRAINING.min_coverage, ge=0.0, le=0.5)
    """Variety: the least share of the catalogue that the customers' new-product lists must show between them
    (measured on the tuning slice). Tuning picks the most accurate setting that reaches it; more variety can cost
    accuracy, and the model card shows how much."""
    test_share: float = Field(default=TRAINING.test_share, ge=0.05, le=0.5)
    """Share of the latest transactions held out to measure the model."""
    min_eval_users: int = Field(default=TRAINING.min_eval_users, ge=1, le=10_000)
    """Fewest customers a list is measured on: below this many, its figures would be noise, so the model card
    says "not measured" instead."""

    update_with_new_data: bool = True
    """On a refresh of new data only whose files add later purchases, add them to the customers' histories
    instead of training again (the item factors stay as trained; only the buyers' lists change)."""
    retrain_after_days: float = Field(default=UPDATES.retrain_after_days, ge=0.0, le=365.0)
    """Train again in full, instead of updating, once the model was trained this many days ago."""
    retrain_after_growth: float = Field(default=UPDATES.retrain_after_growth, ge=0.0, le=10.0)
    """Train again in full, instead of updating, once the purchases added since training exceed this share of
    those it was trained on."""

    def update_policy(self) -> UpdatePolicy:
        return UpdatePolicy(self.retrain_after_days, self.retrain_after_growth)

    def training_settings(self) -> TrainingSettings:
        return TrainingSettings(
            test_share=self.test_share, min_eval_users=self.min_eval_users, min_coverage=self.min_coverage
        )


class InputLimitsResource(dg.ConfigurableResource):
    """Bounds of a readable export (see `contract.InputLimits`), settable per run as resource `input_limits`.

    The ingestion step reads with them; the rules and preparation use the earliest plausible date.
    Upper bounds keep one value from costing unbounded memory, or recursion Python cannot do.
    """

    earliest_timestamp: str = Field(default=LIMITS.earliest_timestamp, max_length=10)
    """Earliest plausible purchase or sign-up date (YYYY-MM-DD); earlier ones are export defects, dropped and
    counted."""
    max_field_chars: int = Field(default=LIMITS.max_field_chars, ge=256, le=16 * 1024 * 1024)
    """Longest value one field may hold; a longer one fails the file (an unclosed quote, a binary file)."""
    max_header_bytes: int = Field(default=LIMITS.max_header_bytes, ge=1024, le=16 * 1024 * 1024)
    """Longest header line of a CSV, in bytes."""
    max_columns: int = Field(default=LIMITS.max_columns, ge=10, le=100_000)
    """Most columns a file may have."""
    max_json_depth: int = Field(default=LIMITS.max_json_depth, ge=3, le=500)
    """Deepest nesting a JSON export may have (Python's parser gives up near 1,000)."""

    @pydantic.field_validator("earliest_timestamp")
    @classmethod
    def _past_date(cls, value: str) -> str:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a date written YYYY-MM-DD") from None
        if not EARLIEST_PLAUSIBLE <= day <= date.today():
            raise ValueError(f"must be from {EARLIEST_PLAUSIBLE} to today")
        return value

    def limits(self) -> InputLimits:
        return InputLimits(
            max_field_chars=self.max_field_chars,
            max_header_bytes=self.max_header_bytes,
            max_columns=self.max_columns,
            max_json_depth=self.max_json_depth,
            earliest_timestamp=self.earliest_timestamp,
        )


# Which asset (op) takes which config class, and which resource takes which settings: what
# `check_run_config` checks.
OP_CONFIGS: dict[str, type[dg.Config]] = {
    "validation_report": ValidationConfig,
    "prepared_data": PreparationConfig,
    "collaborative_filtering_model": ModelConfig,
}
RESOURCE_CONFIGS: dict[str, type[dg.ConfigurableResource]] = {"input_limits": InputLimitsResource}


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
    for section, classes in (("ops", OP_CONFIGS), ("resources", RESOURCE_CONFIGS)):
        given = run_config.get(section) or {}
        for name, config_class in classes.items():
            values = (given.get(name) or {}).get("config") or {}
            try:
                config_class(**values)
            except pydantic.ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(p) for p in error["loc"])
                    problems.append(f"{name}.{where}: {error['msg']} (got {error.get('input')!r:.60})")
    return problems


def check_run_config(run_config: Mapping) -> None:
    """Refuse the run (a `dg.Failure` naming each bad value) before any data is touched."""
    problems = config_problems(run_config)
    if problems:
        raise dg.Failure(
            description="The run's configuration is out of range, so nothing was run: " + "; ".join(problems) + "."
        )
