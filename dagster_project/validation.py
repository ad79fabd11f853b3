"""Data-quality rules over the raw frames, and the quality score.

Each rule marks the rows it rejects; the Dagster asset checks, the validation report and the
preparation step all use these same masks, so what the report counts is what preparation drops.
`validate` runs every rule once and returns a `ValidationReport`: the one shape the checks, the stored
report and the quality gate all read (stored as JSON with `to_dict`, read back with `from_dict`).

Quality score: the share of all raw records (users + products + transactions) that break no rule,
times 100. A missing required column (a schema failure) makes the score 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from dagster_project import repeated_lines
from dagster_project.contract import (
    EMAIL_PATTERN,
    ENTITIES,
    LIMITS,
    MAX_AGE,
    MAX_PRICE,
    MAX_QUANTITY,
    MIN_AGE,
    EntitySpec,
    InputLimits,
    duplicated_rows,
    in_known,
    is_in,
    known_values,
    parse_timestamps,
    to_number,
)
from dagster_project.ingest import ROW_COLUMN, SOURCE_COLUMN

ERROR, WARN = "ERROR", "WARN"
# The quality gate's default. Real exports often carry a quarter of rows from guest checkouts with no
# customer id, or many cancellations: those rows are dropped and counted, and training should go on.
# 50 stops a run only when most of the data is unusable (a wrong file, a broken export).
DEFAULT_MIN_QUALITY_SCORE = 50.0


@dataclass(frozen=True)
class Frames:
    """The three raw tables a rule may look at (referential rules need two), and the contract's limits.

    Each table's rule masks are kept once computed (`failure_masks`), so the report and the preparation
    that drops what it counts evaluate the rules once; a pipeline step that has them from an earlier
    step gives them with `with_masks`. They are tied to the table object and the limits they were
    computed for: `dataclasses.replace` gives a copy without them.
    """

    users: pd.DataFrame
    products: pd.DataFrame
    transactions: pd.DataFrame
    limits: InputLimits = LIMITS
    # Row hashes of the files before this one (one file's partition at a time), and of this file's rows:
    # a line repeated across files is a repeated line too (see `repeated_lines`).
    earlier_rows: repeated_lines.EarlierLines | pd.DataFrame | None = None
    row_hashes: pd.DataFrame | None = None
    # Given (a dict shared by the Frames of one step's files): the reference tables' ids kept as Arrow text
    # across files, so each file's "known customer / product" rules convert them once (`contract.in_known`).
    lookups: dict | None = field(default=None, compare=False, repr=False)
    _masks: dict[str, tuple[pd.DataFrame, InputLimits, pd.DataFrame]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def of(self, entity: str) -> pd.DataFrame:
        return getattr(self, entity)

    def with_masks(self, masks: dict[str, pd.DataFrame]) -> Frames:
        """These frames with rule masks computed earlier for the same rows (in order); others are ignored."""
        for entity, frame in masks.items():
            table = self.of(entity)
            if len(frame) == len(table):
                self._masks[entity] = (table, self.limits, frame.set_axis(table.index))
        return self

    @property
    def masks(self) -> dict[str, pd.DataFrame]:
        """The masks computed so far, by entity (what the ingestion step stores for preparation)."""
        return {entity: masks for entity, (_, _, masks) in self._masks.items()}


@dataclass(frozen=True)
class Rule:
    name: str
    entity: str
    severity: str
    description: str
    columns: tuple[str, ...]
    failing: Callable[[Frames], pd.Series]


@dataclass(frozen=True)
class RuleResult:
    name: str
    entity: str
    severity: str
    description: str
    passed: bool
    skipped: bool
    failing_rows: int
    total_rows: int
    examples: list[dict] = field(default_factory=list)

    @property
    def failing_share(self) -> float:
        return self.failing_rows / self.total_rows if self.total_rows else 0.0


def _missing(column: str, entity: str) -> Callable[[Frames], pd.Series]:
    return lambda f: f.of(entity)[column].isna()


def _duplicated(column: str, entity: str) -> Callable[[Frames], pd.Series]:
    return lambda f: f.of(entity)[column].notna() & f.of(entity)[column].duplicated(keep="first")


def _bad_email(f: Frames) -> pd.Series:
    email = f.users["email"].str.strip()
    return email.isna() | ~email.str.match(EMAIL_PATTERN).fillna(False)


def _bad_age(f: Frames) -> pd.Series:
    raw = f.users["age"]
    age = to_number(raw)
    return raw.notna() & (age.isna() | (age < MIN_AGE) | (age > MAX_AGE))


def _bad_price(entity: str, column: str) -> Callable[[Frames], pd.Series]:
    def failing(f: Frames) -> pd.Series:
        raw = f.of(entity)[column]
        price = to_number(raw)  # NaN for text, 'nan', 'inf' and overflowing literals such as 1e309
        return raw.notna() & (price.isna() | (price <= 0) | (price > MAX_PRICE))

    return failing


def _unknown(column: str, reference: str) -> Callable[[Frames], pd.Series]:
    def failing(f: Frames) -> pd.Series:
        ids, table = f.transactions[column], f.of(reference)
        if f.lookups is None:
            return ids.notna() & ~is_in(ids, table[column])
        kept = f.lookups.get((reference, column))
        if kept is None or kept[0] is not table:  # made from this very table only
            kept = f.lookups[(reference, column)] = (table, known_values(table[column]))
        return ids.notna() & ~in_known(ids, kept[1])

    return failing


def _bad_quantity(f: Frames) -> pd.Series:
    raw = f.transactions["quantity"]
    quantity = to_number(raw)
    return raw.notna() & (quantity.isna() | (quantity <= 0) | (quantity > MAX_QUANTITY) | (quantity % 1 != 0))


def plausible_times(parsed: pd.Series, limits: InputLimits = LIMITS) -> pd.Series:
    """From the earliest plausible date (year 1 or 1500 is an export default, not a purchase) to tomorrow."""
    return (parsed >= limits.earliest) & (parsed <= pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1))


def _bad_timestamp(f: Frames) -> pd.Series:
    parsed = parse_timestamps(f.transactions["timestamp"])
    return parsed.isna() | ~plausible_times(parsed, f.limits)


def _duplicate_rows(f: Frames) -> pd.Series:
    data = f.transactions.drop(columns=[SOURCE_COLUMN, ROW_COLUMN], errors="ignore")
    if f.earlier_rows is None:
        hashes = f.row_hashes if f.row_hashes is not None and len(f.row_hashes) == len(data) else None
        return pd.Series(duplicated_rows(data, hashes), index=data.index)
    hashes = f.row_hashes if f.row_hashes is not None else repeated_lines.row_hashes(data)
    return pd.Series(repeated_lines.repeated(data, hashes, f.earlier_rows), index=data.index)


RULES: tuple[Rule, ...] = (
    Rule("user_id_present", "users", ERROR, "every user row has a user_id", ("user_id",), _missing("user_id", "users")),
    Rule(
        "user_id_unique",
        "users",
        WARN,
        "a user_id appears once across all user files",
        ("user_id",),
        _duplicated("user_id", "users"),
    ),
    Rule("email_valid", "users", WARN, "email present and shaped like name@domain.tld", ("email",), _bad_email),
    Rule(
        "age_in_range", "users", WARN, f"age, when given, is a number from {MIN_AGE} to {MAX_AGE}", ("age",), _bad_age
    ),
    Rule(
        "product_id_present",
        "products",
        ERROR,
        "every product has a product_id, text or a number (null, objects and lists are not ids)",
        ("product_id",),
        _missing("product_id", "products"),
    ),
    Rule(
        "product_id_unique",
        "products",
        WARN,
        "a product_id appears once",
        ("product_id",),
        _duplicated("product_id", "products"),
    ),
    Rule(
        "product_name_present",
        "products",
        WARN,
        "every product has a name, text or a number",
        ("name",),
        _missing("name", "products"),
    ),
    Rule(
        "price_positive",
        "products",
        WARN,
        f"price, when given, is a finite number above 0 and at most {MAX_PRICE:,.0f}",
        ("price",),
        _bad_price("products", "price"),
    ),
    Rule(
        "transaction_ids_present",
        "transactions",
        ERROR,
        "user_id and product_id are present",
        ("user_id", "product_id"),
        lambda f: f.transactions["user_id"].isna() | f.transactions["product_id"].isna(),
    ),
    Rule(
        "user_known",
        "transactions",
        WARN,
        "the user_id exists in the user files",
        ("user_id",),
        _unknown("user_id", "users"),
    ),
    Rule(
        "product_known",
        "transactions",
        WARN,
        "the product_id exists in the product files",
        ("product_id",),
        _unknown("product_id", "products"),
    ),
    Rule(
        "quantity_valid",
        "transactions",
        WARN,
        f"quantity, when given, is a whole number from 1 to {MAX_QUANTITY}",
        ("quantity",),
        _bad_quantity,
    ),
    Rule(
        "unit_price_valid",
        "transactions",
        WARN,
        f"unit_price, when given, is a finite number above 0 and at most {MAX_PRICE:,.0f}",
        ("unit_price",),
        _bad_price("transactions", "unit_price"),
    ),
    Rule(
        "timestamp_valid",
        "transactions",
        WARN,
        "timestamp parses as a date-time, not before the earliest "
        f"plausible date ({LIMITS.earliest_timestamp} unless configured) and not in the future",
        ("timestamp",),
        _bad_timestamp,
    ),
    Rule(
        "transaction_not_duplicated", "transactions", WARN, "no exact duplicate transaction lines", (), _duplicate_rows
    ),
)


# What a failing rule means for the data, and what to do about it: shown with the gate's message and
# beside each failing check in the app, so both say the same.
EFFECTS = {
    "user_id_present": "these rows are left out",
    "user_id_unique": "only the first row of each id is kept",
    "email_valid": "the customer is kept; the e-mail is left empty",
    "age_in_range": "the customer is kept; the age is left empty",
    "product_id_present": "these products are left out",
    "product_id_unique": "only the first row of each id is kept",
    "product_name_present": "these products are left out",
    "price_positive": "the product is kept; the price is left empty",
    "transaction_ids_present": "these purchases are left out",
    "user_known": "these purchases are left out",
    "product_known": "these purchases are left out",
    "quantity_valid": "these purchases are left out",
    "unit_price_valid": "these purchases are left out",
    "timestamp_valid": "these purchases are left out",
    "transaction_not_duplicated": "the repeated lines are left out",
}
FIXES = {
    "user_id_present": "Fill in the customer id in the customer export, or remove rows that are not customers.",
    "user_id_unique": "Give each customer one row: merge or remove the repeated ids across the customer files.",
    "email_valid": "Correct the e-mail addresses in the customer export (name@domain.tld).",
    "age_in_range": f"Correct the ages in the customer export ({MIN_AGE} to {MAX_AGE}), or leave them empty.",
    "product_id_present": "Fill in the product id in the product export.",
    "product_id_unique": "Give each product one row in the product export.",
    "product_name_present": "Fill in the product names in the product export.",
    "price_positive": "Correct the prices in the product export (above 0), or leave them empty.",
    "transaction_ids_present": "Fill in the customer and product id of each purchase, or remove guest and "
    "non-product lines from the purchase export.",
    "user_known": "Export the customers these purchases name (the customer files may be incomplete or older).",
    "product_known": "Export the products these purchases name (the product file may be incomplete or older).",
    "quantity_valid": "Correct the quantities in the purchase export (whole numbers of 1 or more); "
    "returns and cancellations do not belong in it.",
    "unit_price_valid": "Correct the unit prices in the purchase export (above 0), or leave them empty.",
    "timestamp_valid": "Correct the purchase dates in the export (a date and time, not in the future).",
    "transaction_not_duplicated": "Remove the repeated lines from the purchase export (often the same file "
    "exported twice).",
}
GATE_ADVICE = (
    "Fix those rows in the export, or lower the minimum quality score (Refresh options in the app, "
    "or validation_report.min_quality_score in run config) if they are expected."
)


FILE_ADVICE = (
    "Fix or replace that file in the data folder (or take it out if it does not belong there), then refresh again."
)


def problem_line(check: RuleResult) -> str:
    """One failing check in words: how many rows, which rule, and the first example's file and row."""
    example = check.examples[0] if check.examples else {}
    where = f" (e.g. {example.get('source_file')} row {example.get('source_row')})" if example else ""
    return (
        f"{check.name} on {check.entity}: {check.failing_rows} of {check.total_rows} rows "
        f"fail '{check.description}'{where}"
    )


def what_to_do(check: RuleResult) -> str:
    return FIXES.get(check.name, "Correct those rows in the export.")


def effect(check: RuleResult) -> str:
    return EFFECTS.get(check.name, "these rows are left out")


def rules_for(entity: str) -> list[Rule]:
    return [r for r in RULES if r.entity == entity]


def failure_masks(frames: Frames, entity: str) -> pd.DataFrame:
    """One boolean column per applicable rule of `entity` (rules whose columns are absent are skipped).

    Computed once per table and limits (kept in `frames`).
    """
    table = frames.of(entity)
    known = frames._masks.get(entity)
    if known is not None and known[0] is table and known[1] == frames.limits:
        return known[2]
    masks = pd.DataFrame(
        {
            rule.name: rule.failing(frames).fillna(True).astype(bool)
            for rule in rules_for(entity)
            if all(c in table.columns for c in rule.columns)
        },
        index=table.index,
    )
    frames._masks[entity] = (table, frames.limits, masks)
    return masks


def schema_problems(frame: pd.DataFrame, spec: EntitySpec) -> list[str]:
    return [c for c in spec.required if c not in frame.columns]


def _examples(table: pd.DataFrame, mask: pd.Series, rule: Rule, limit: int = 5) -> list[dict]:
    rows = table.iloc[np.flatnonzero(np.asarray(mask))[:limit]]  # the first few, without copying every failing row
    columns = [c for c in (SOURCE_COLUMN, ROW_COLUMN, *rule.columns) if c in rows.columns]
    if len(columns) <= 2:
        columns += [c for c in rows.columns[:4] if c not in columns]
    return [{c: (None if pd.isna(v) else str(v)) for c, v in row.items()} for _, row in rows[columns].iterrows()]


@dataclass(frozen=True)
class FileBelow:
    """A purchase file the gate stops on by itself: its own score is below the threshold, or it keeps no line.

    The whole data's score can pass while one file is unusable (a wrong export, columns shifted): judged per
    file too, such a file stops the run instead of being dropped line by line without a word.
    """

    file: str
    quality_score: float
    records: int
    invalid_records: int
    problems: list[str] = field(default_factory=list)  # its worst failing checks, in words, with what to do
    repeated: int = 0  # lines that repeat a line of a file named before it (or of itself)

    @property
    def keeps_nothing(self) -> bool:
        return self.records > 0 and self.invalid_records >= self.records

    @property
    def mostly_repeated(self) -> bool:
        """Its lines are mostly copies: the same export delivered twice, under a later name or an earlier one."""
        return self.repeated * 2 > self.invalid_records

    def words(self, threshold: float) -> str:
        """One line for the gate's message: the file, its score, why it stops the run."""
        why = (
            f"every one of its {self.records:,} lines has a problem, so none would be used"
            if self.keeps_nothing
            else f"{self.invalid_records:,} of its {self.records:,} lines have a problem"
        )
        if self.mostly_repeated:
            why += (
                f"; {self.repeated:,} repeat lines of files named before it: if a copy of this export arrived "
                "under another name, take the copy out"
            )
        return f"{self.file}: quality score {self.quality_score}, below the threshold {threshold} ({why})"


def low_files(files: Mapping[str, ValidationReport], threshold: float) -> list[FileBelow]:
    """The files (name -> the rules' report on it alone) whose own score is below `threshold`, or that keep no line."""
    found = []
    for name, part in files.items():
        if not part.total_records:
            continue
        if part.quality_score >= threshold and part.invalid_records < part.total_records:
            continue
        worst = sorted(part.failed(), key=lambda c: -c.failing_rows)[:2]
        problems = [f"{problem_line(c)}. {what_to_do(c)}" for c in worst]
        repeated = sum(c.failing_rows for c in part.checks if c.name == "transaction_not_duplicated")
        found.append(FileBelow(name, part.quality_score, part.total_records, part.invalid_records, problems, repeated))
    return found


@dataclass(frozen=True)
class ValidationReport:
    """Every rule's result and the quality score; once judged, also the gate's threshold and the files below it."""

    quality_score: float
    total_records: int
    invalid_records: int
    records: dict[str, int]
    invalid: dict[str, int]
    schema_errors: dict[str, list[str]]
    checks: list[RuleResult]
    min_quality_score: float | None = None  # set by `judged`: the run's threshold for the quality gate
    files_below: list[FileBelow] = field(default_factory=list)  # set by `judged`: purchase files that stop the gate

    @property
    def gate_passed(self) -> bool | None:
        if self.min_quality_score is None:
            return None
        return self.quality_score >= self.min_quality_score and not self.files_below

    def judged(self, min_quality_score: float, files: Mapping[str, ValidationReport] | None = None) -> ValidationReport:
        """The same results against a threshold (the score is the data's; the threshold is the run's).

        `files` (purchase file -> the rules' report on it alone) are judged one by one too: a file below the
        threshold, or that keeps no line, stops the gate even when the whole data passes.
        """
        below = low_files(files or {}, min_quality_score)
        return replace(self, min_quality_score=min_quality_score, files_below=below)

    def failed(self, severity: str | None = None) -> list[RuleResult]:
        return [c for c in self.checks if not c.passed and (severity is None or c.severity == severity)]

    def to_dict(self) -> dict:
        """Plain JSON types; the threshold and the gate's verdict only once judged."""
        payload = asdict(self)
        if self.min_quality_score is None:
            del payload["min_quality_score"], payload["files_below"]
        else:
            payload["gate_passed"] = self.gate_passed
        return payload

    @classmethod
    def from_dict(cls, payload: dict) -> ValidationReport:
        fields = {k: v for k, v in payload.items() if k != "gate_passed"}  # derived, not stored state
        return cls(
            **{
                **fields,
                "checks": [RuleResult(**check) for check in payload["checks"]],
                "files_below": [FileBelow(**below) for below in payload.get("files_below", [])],
            }
        )

    def _files_headline(self) -> str:
        """The gate's first line when the whole data passes but purchase files on their own do not."""
        one = len(self.files_below) == 1
        names = ", ".join(f.file for f in self.files_below[:3]) + (" …" if len(self.files_below) > 3 else "")
        why = (
            f"{'Its' if one else 'Their'} lines repeat lines already read: usually the same export delivered twice "
            "under two names."
            if all(f.mostly_repeated for f in self.files_below)
            else "A file this poor is usually a wrong or broken export, e.g. columns shifted by one."
        )
        return (
            f"Purchase file{'' if one else 's'} {names} {'is' if one else 'are'} far worse than the rest of the data "
            f"(quality score {self.quality_score} over all files): the run stopped before preparation and training, "
            f"and the current model stays in place. {why}"
        )

    def gate_message(self) -> str:
        """Why the gate failed, in the user's terms: the worst checks (or files), where, and what to do."""
        threshold = self.min_quality_score
        if self.quality_score < (threshold or 0.0) or not self.files_below:
            lines = [
                f"Quality score {self.quality_score} is below the threshold {threshold}: the run "
                f"stopped before preparation and training, and the current model stays in place."
            ]
            for entity, columns in self.schema_errors.items():
                lines.append(f"- {entity}: required column(s) {', '.join(columns)} missing.")
            for check in sorted(self.failed(), key=lambda c: -c.failing_rows)[:3]:
                lines.append(f"- {problem_line(check)}. {what_to_do(check)}")
        else:
            lines = [self._files_headline()]
        for below in self.files_below[:3]:
            lines.append(f"- {below.words(threshold)}.")
            lines.extend(f"  - {problem}" for problem in below.problems)
        if self.files_below:
            lines.append(FILE_ADVICE)
        if self.quality_score < (threshold or 0.0) or not all(f.keeps_nothing for f in self.files_below):
            lines.append(GATE_ADVICE)
        return "\n".join(lines)


def validate(frames: Frames, entities: tuple[str, ...] | None = None) -> ValidationReport:
    """Run every rule (of `entities`, default all); return per-check results and the quality score."""
    specs = {spec.name: spec for spec in ENTITIES if entities is None or spec.name in entities}
    checks: list[RuleResult] = []
    records, invalid, schema_errors = {}, {}, {}
    for entity, spec in specs.items():
        table = frames.of(entity)
        records[entity] = len(table)
        missing = schema_problems(table, spec)
        if missing:
            schema_errors[entity] = missing
        masks = failure_masks(frames, entity) if not missing else pd.DataFrame(index=table.index)
        invalid[entity] = int(masks.any(axis=1).sum()) if not masks.empty else (len(table) if missing else 0)
        for rule in rules_for(entity):
            if rule.name in masks:
                mask = masks[rule.name]
                count = int(mask.sum())
                checks.append(
                    RuleResult(
                        rule.name,
                        entity,
                        rule.severity,
                        rule.description,
                        count == 0,
                        False,
                        count,
                        len(table),
                        _examples(table, mask, rule) if count else [],
                    )
                )
            else:
                checks.append(RuleResult(rule.name, entity, rule.severity, rule.description, True, True, 0, len(table)))
    return _scored(records, invalid, schema_errors, checks)


def _scored(records: dict, invalid: dict, schema_errors: dict, checks: list[RuleResult]) -> ValidationReport:
    total = sum(records.values())
    bad = sum(invalid.values())
    score = 0.0 if schema_errors or total == 0 else round(100.0 * (total - bad) / total, 2)
    return ValidationReport(score, total, bad, records, invalid, schema_errors, checks)


def by_file(frames: Frames, entity: str = "transactions") -> dict[str, ValidationReport]:
    """The rules' report on each file of `entity` alone (from the masks `validate` computed on the merged table).

    For the gate's per-file judgement when the files were read together (an upload): each file's lines with
    a problem, its score, its failing checks and their examples.
    """
    table = frames.of(entity)
    if SOURCE_COLUMN not in table.columns or entity not in frames._masks:
        return {}
    masks = failure_masks(frames, entity)
    reports = {}
    for name, rows in table.groupby(SOURCE_COLUMN, observed=True, sort=False).indices.items():
        part, part_masks = table.iloc[rows], masks.iloc[rows]
        checks = []
        for rule in rules_for(entity):
            if rule.name not in part_masks:
                checks.append(RuleResult(rule.name, entity, rule.severity, rule.description, True, True, 0, len(part)))
                continue
            mask = part_masks[rule.name]
            count = int(mask.sum())
            examples = _examples(part, mask, rule) if count else []
            checks.append(
                RuleResult(
                    rule.name, entity, rule.severity, rule.description, count == 0, False, count, len(part), examples
                )
            )
        invalid = int(part_masks.any(axis=1).sum()) if not part_masks.empty else 0
        reports[str(name)] = _scored({entity: len(part)}, {entity: invalid}, {}, checks)
    return reports


def combine(parts: list[ValidationReport], example_limit: int = 5) -> ValidationReport:
    """One report from reports on parts of the data (users and products; each transactions file, in file order).

    What `validate` gives on the merged tables: counts add up, a rule passes when it passes on every part,
    is skipped when skipped on every part, and the examples are the first ones in file order.
    """
    records: dict[str, int] = {}
    invalid: dict[str, int] = {}
    schema_errors: dict[str, list[str]] = {}
    merged: dict[str, RuleResult] = {}
    for part in parts:
        for entity, count in part.records.items():
            records[entity] = records.get(entity, 0) + count
        for entity, count in part.invalid.items():
            invalid[entity] = invalid.get(entity, 0) + count
        for entity, columns in part.schema_errors.items():
            schema_errors[entity] = sorted(set(schema_errors.get(entity, [])) | set(columns))
        for check in part.checks:
            seen = merged.get(check.name)
            if seen is None:
                merged[check.name] = check
                continue
            skipped = seen.skipped and check.skipped
            failing = seen.failing_rows + check.failing_rows
            merged[check.name] = replace(
                seen,
                passed=failing == 0,
                skipped=skipped,
                failing_rows=failing,
                total_rows=seen.total_rows + check.total_rows,
                examples=(seen.examples + check.examples)[:example_limit],
            )
    order = {rule.name: i for i, rule in enumerate(RULES)}
    checks = sorted(merged.values(), key=lambda c: order.get(c.name, len(order)))
    return _scored(records, invalid, schema_errors, checks)
