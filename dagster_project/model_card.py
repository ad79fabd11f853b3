"""The model card: what was trained, how it was chosen and how well it did, as one typed record.

The card travels inside the model file as JSON, so the app can show it from the file alone. Every
reader (the asset's metadata, the app's pages, the tests) reads the same attributes; `from_document`
checks the JSON against these classes field by field, so a card that does not fit is refused when
the model loads, never half-shown later.

Imports nothing heavy: the app reads cards without numpy or scikit-learn.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass, replace
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

ListKind = Literal["new", "rebuy"]
LIST_KINDS: tuple[ListKind, ...] = ("new", "rebuy")
LIST_NAMES: dict[str, str] = {"new": "new products", "rebuy": "lists with re-buys"}


@dataclass(frozen=True)
class ModelParams:
    """The served model's settings: chosen on a validation slice, or given by the run."""

    factors: int = 32
    shrinkage: float = 1.0  # lambda as a multiple of the mean squared singular value
    weighting: Literal["binary", "log"] = "log"  # log: log1p of purchase counts
    rebuy_weight: float = 1.0  # how much the user's own history counts in lists with re-buys
    # Scores are divided by (buyers + 1) ** popularity_exponent: 0 leaves them, higher brings less-bought
    # products forward (more variety across customers' lists, at some cost in accuracy).
    popularity_exponent: float = 0.0
    # Weight of the blend with item-item neighbours (products bought with the customer's own): 0 leaves
    # the factor model alone, higher adds products specific to each customer (more variety).
    neighbour_weight: float = 0.0


@dataclass(frozen=True)
class Metrics:
    """One model's figures on one list, at k, over `users` customers."""

    users: int
    precision: float
    recall: float
    ndcg: float
    hit_rate: float
    coverage: float  # share of the catalogue shown to anyone


@dataclass(frozen=True)
class HoldoutSummary:
    """How the card's figures were measured."""

    protocol: Literal["time split", "random split"]
    test_share: float
    cutoff: str | None  # time splits only
    evaluated_users: dict[ListKind, int]  # customers measurable per list
    min_users: int  # fewer than this on a list and its figures are left out
    k: int
    max_test_users: int


@dataclass(frozen=True)
class Trial:
    """One setting tried on the validation slice, and its NDCG@k there."""

    list_kind: ListKind
    params: ModelParams
    ndcg: float
    coverage: float  # share of the catalogue in the lists of the validation customers


@dataclass(frozen=True)
class TuningSample:
    """Whom the tuner measured every setting on: at most `cap` customers per list, a seeded sample beyond that.

    The cap bounds tuning's cost whatever the shop's size; the served model still trains on everyone.
    """

    users: dict[ListKind, int]  # customers each setting was measured on, per list
    available: dict[ListKind, int]  # customers the validation slice could measure, per list
    cap: int
    seed: int


@dataclass(frozen=True)
class TrainingData:
    """What the model has learnt from, file by file: whether new purchases only extend it (model_update.py)."""

    files: dict[str, str]  # purchase file -> checksum of its prepared rows
    reference: str  # checksum of the prepared customers and products
    last_purchase: str | None  # ISO 8601 time of the latest purchase in the files

    @classmethod
    def from_document(cls, document: object) -> TrainingData:
        """From JSON values; a ValueError when they do not fit."""
        return _build(cls, document, "data")


@dataclass(frozen=True)
class ModelUpdate:
    """Purchases added to the customers' histories since the model was trained, without training again."""

    updated_at: str  # ISO 8601, UTC: the latest update
    updates: int  # updates since training
    files: list[str]  # purchase files added since training, in order
    latest_files: list[str]  # those the latest update added (their buyers' lists are the ones that changed)
    transactions: int  # purchases added since training
    customers: int  # customers whose purchases changed in the latest update (new customers included)
    new_customers: int  # customers first seen since training
    based_on: str | None = None  # the version the latest update was made from (its lists are the ones to build on)


@dataclass(frozen=True)
class ModelCard:
    """Everything the pipeline and the app say about a trained model."""

    trained_at: str  # ISO 8601, UTC
    params: ModelParams
    selection: str  # how the params were chosen, in words
    holdout: HoldoutSummary
    metrics: dict[ListKind, dict[str, Metrics]]  # measured lists -> model ("svd", "popularity", "buy_again")
    not_measured: dict[ListKind, str]  # the other lists -> why they have no figures, in words
    trials: list[Trial]  # the new-products trials are the accuracy-variety curve explored
    min_coverage: float  # the variety asked for: least catalogue share (0-1) of the new-products lists on validation
    users: int
    items: int
    interactions: int
    transactions: int
    train_seconds: float
    run_id: str | None = None
    data_checksum: str | None = None
    version: str | None = None  # set when the model is published
    tuning: TuningSample | None = None  # settings chosen on a validation slice: whom they were measured on
    data: TrainingData | None = None  # the files the model covers now (training's and those added since)
    update: ModelUpdate | None = None  # purchases added since training (None: as trained)

    @property
    def refreshed_at(self) -> str:
        """When the model last learnt of new purchases: its latest update, else its training (ISO 8601)."""
        return self.update.updated_at if self.update is not None else self.trained_at

    @property
    def purchases(self) -> int:
        """Purchases the model holds now: those it was trained on and those added since."""
        return self.transactions + (self.update.transactions if self.update is not None else 0)

    @property
    def updates(self) -> int:
        """Updates with new purchases since training (0: as trained); stored lists build on the previous count's."""
        return self.update.updates if self.update is not None else 0

    @property
    def curve(self) -> list[Trial]:
        """The new-products trials (NDCG@k against catalogue coverage), the chosen setting among them."""
        return [t for t in self.trials if t.list_kind == "new"]

    def is_chosen(self, trial: Trial) -> bool:
        """Whether a new-products trial is the setting served (the re-buy weight plays no part there)."""
        return trial.list_kind == "new" and trial.params == replace(self.params, rebuy_weight=trial.params.rebuy_weight)

    @property
    def measured(self) -> bool:
        """Whether the new-products list, the card's headline, has figures."""
        return "new" in self.metrics

    def to_document(self) -> dict[str, Any]:
        """The card as plain JSON values."""
        return asdict(self)

    @classmethod
    def from_document(cls, document: object) -> ModelCard:
        """The card from JSON values; a ValueError when any field is missing, extra or of the wrong type."""
        return _build(cls, document, "card")


@cache
def _field_types(kind: type) -> dict[str, Any]:
    hints = get_type_hints(kind)
    return {f.name: hints[f.name] for f in fields(kind)}


@cache
def _optional(kind: type) -> set[str]:
    return {f.name for f in fields(kind) if f.default is not MISSING or f.default_factory is not MISSING}


def _build(kind: Any, value: object, where: str) -> Any:
    """`value` as an instance of the type `kind` (dataclasses, dicts, lists, unions, literals, scalars)."""
    origin = get_origin(kind)
    if is_dataclass(kind):
        hints = _field_types(kind)
        if not isinstance(value, dict) or not set(hints) - _optional(kind) <= set(value) <= set(hints):
            raise ValueError(f"{where}: expected the fields {sorted(hints)}")
        # a field added later with a default may be missing from older files: it takes its default
        return kind(
            **{name: _build(hint, value[name], f"{where}.{name}") for name, hint in hints.items() if name in value}
        )
    if origin is dict:
        key_kind, item = get_args(kind)
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        return {_build(key_kind, key, f"{where} key"): _build(item, v, f"{where}.{key}") for key, v in value.items()}
    if origin is list:
        (item,) = get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (Union, types.UnionType):
        for option in get_args(kind):
            try:
                return _build(option, value, where)
            except ValueError:
                pass
        raise ValueError(f"{where}: unexpected value")
    if origin is Literal:
        if value not in get_args(kind):
            raise ValueError(f"{where}: expected one of {get_args(kind)}")
        return value
    if kind is type(None):
        if value is not None:
            raise ValueError(f"{where}: expected null")
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool) and type(value) is kind:
        return value
    raise ValueError(f"{where}: expected {getattr(kind, '__name__', kind)}")
