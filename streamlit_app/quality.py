"""The Data quality page's content in people's words: each check's result, its example rows and what to do.

Built from Dagster's check results (the examples travel in each check's metadata) or, while the pipeline
service is down, from the validation report the pipeline last wrote to storage. The words for the fix
are the quality gate's own (dagster_project.validation). No Streamlit import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dagster_project import validation
from dagster_project.ingest import ROW_COLUMN, SOURCE_COLUMN
from dagster_project.validation import RuleResult, ValidationReport

REPORT_FILE = "validation/validation_report.json"  # where the pipeline's storage keeps the latest report
TABLE_WORDS = {
    "users": "Customers",
    "products": "Products",
    "transactions": "Purchases",
    "validation_report": "All data",
}
ENTITY_OF = {"raw_users": "users", "raw_products": "products", "raw_transactions": "transactions"}
GATE_MEANING = "Blocks training"  # below the minimum score the refresh stops and the current model stays
RULE_MEANING = "Advisory"  # counts against the quality score; the refresh goes on
MEANINGS = (
    "Advisory: the problem lowers the data quality score, the refresh goes on. Blocks training: below the "
    "minimum score the refresh stops before training, and the current model stays in place."
)
CHECK_WORDS = {
    "user_id_present": "Customer id filled in",
    "user_id_unique": "Customer id not repeated",
    "email_valid": "E-mail address valid",
    "age_in_range": "Age plausible",
    "product_id_present": "Product id filled in",
    "product_id_unique": "Product id not repeated",
    "product_name_present": "Product name filled in",
    "price_positive": "Price valid",
    "transaction_ids_present": "Customer and product named",
    "user_known": "Customer known",
    "product_known": "Product known",
    "quantity_valid": "Quantity valid",
    "unit_price_valid": "Unit price valid",
    "timestamp_valid": "Purchase date valid",
    "transaction_not_duplicated": "Line not repeated",
    "quality_gate": "Quality score at least the minimum",
}
REASON_WORDS = {
    "user_id_present": "no customer id",
    "user_id_unique": "customer id repeated",
    "product_id_present": "no product id",
    "product_id_unique": "product id repeated",
    "product_name_present": "no product name",
    "transaction_ids_present": "no customer or product id",
    "user_known": "customer not in the customer files",
    "product_known": "product not in the product files",
    "quantity_valid": "quantity not valid",
    "unit_price_valid": "unit price not valid",
    "timestamp_valid": "purchase date not valid",
    "transaction_not_duplicated": "line repeated",
    "not_merchandise": "not merchandise (postage, fees, adjustments)",
    "product_excluded": "product left out of the catalogue",
}


def check_words(name: str) -> str:
    """A check's short name for people ('E-mail address valid')."""
    return CHECK_WORDS.get(name, name.replace("_", " ").capitalize())


def reason_words(reason: str) -> str:
    """Why preparation left rows out, for people ('customer not in the customer files')."""
    words = REASON_WORDS.get(reason, reason.replace("_", " "))
    return words[0].upper() + words[1:]


@dataclass(frozen=True)
class CheckView:
    name: str
    entity: str  # users / products / transactions, or validation_report for the gate
    passed: bool | None  # None: not run
    skipped: bool
    failing_rows: int
    total_rows: int
    examples: list[dict] = field(default_factory=list)
    description: str = ""

    @property
    def result(self) -> str:
        if self.passed is None:
            return "Not run yet"
        if self.skipped:
            return "Skipped (column absent)"
        return "Passed" if self.passed else "Problems found"

    @property
    def meaning(self) -> str:
        return GATE_MEANING if self.name == "quality_gate" else RULE_MEANING

    @property
    def rule_result(self) -> RuleResult:
        return RuleResult(
            self.name,
            self.entity,
            "",
            self.description,
            bool(self.passed),
            self.skipped,
            self.failing_rows,
            self.total_rows,
            self.examples,
        )

    @property
    def fix(self) -> str:
        return validation.what_to_do(self.rule_result)

    @property
    def effect(self) -> str:
        return validation.effect(self.rule_result)


def low_files_words(files: dict[str, float]) -> str:
    """Purchase files that stopped the gate on their own, with their scores, for a sentence (names as given)."""
    if len(files) == 1:
        ((name, score),) = files.items()
        return f"the purchase file {name} has a data quality of {float(score):.1f}%"
    named = [f"{name} ({float(score):.1f}%)" for name, score in list(files.items())[:3]]
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return f"the purchase files {', '.join(named)}{more} have a data quality"


def from_api(rows: list[dict]) -> list[CheckView]:
    """Dagster's check results (DagsterAPI.check_results) as views."""
    views = []
    for row in rows:
        entity = ENTITY_OF.get(row["asset"], row["asset"])
        views.append(
            CheckView(
                row["check"],
                entity,
                row.get("passed"),
                bool(row.get("skipped")),
                int(row.get("failing_rows") or 0),
                int(row.get("total_rows") or 0),
                list(row.get("examples") or []),
                row.get("description") or "",
            )
        )
    return views


def from_report(report: ValidationReport) -> list[CheckView]:
    views = [
        CheckView(c.name, c.entity, c.passed, c.skipped, c.failing_rows, c.total_rows, c.examples, c.description)
        for c in report.checks
    ]
    if report.gate_passed is not None:
        views.append(CheckView("quality_gate", "validation_report", report.gate_passed, False, 0, 0))
    return views


def stored_report(storage: Path) -> tuple[ValidationReport, float] | None:
    """The validation report the pipeline last wrote (and when), or None when there is none that reads."""
    path = Path(storage) / REPORT_FILE
    try:
        return ValidationReport.from_dict(json.loads(path.read_text())), path.stat().st_mtime
    except (OSError, ValueError, TypeError, KeyError):
        return None


def checks_frame(views: list[CheckView], dropped: dict[str, int]) -> pd.DataFrame:
    """Every check in one table: where, what, result, rows with the problem, rows left out, what it means."""
    rows = [
        {
            "Data": TABLE_WORDS.get(v.entity, v.entity),
            "Check": check_words(v.name),
            "Result": v.result,
            "Rows with the problem": f"{v.failing_rows:,} of {v.total_rows:,}" if v.total_rows else "–",
            "Rows left out": f"{dropped[v.name]:,}" if v.name in dropped else ("0" if v.total_rows else "–"),
            "What it means": v.meaning,
            "failing": v.failing_rows,
        }
        for v in views
    ]
    frame = pd.DataFrame(
        rows, columns=["Data", "Check", "Result", "Rows with the problem", "Rows left out", "What it means", "failing"]
    )
    order = {"Problems found": 0, "Not run yet": 1, "Skipped (column absent)": 2, "Passed": 3}
    return frame.sort_values(["Result", "failing"], key=lambda s: s.map(order) if s.name == "Result" else -s).drop(
        columns="failing"
    )


def examples_frame(view: CheckView) -> pd.DataFrame:
    """The check's example rows: file, row, then the values the rule looked at."""
    frame = pd.DataFrame(view.examples)
    if frame.empty:
        return frame
    first = [c for c in (SOURCE_COLUMN, ROW_COLUMN) if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame = frame.rename(columns={SOURCE_COLUMN: "File", ROW_COLUMN: "Row"})
    return frame.fillna("(empty)").astype(str)


def dropped_by_rule(latest: dict[str, dict | None]) -> dict[str, int]:
    """Rows preparation left out, by the rule they broke first, over the three tables."""
    out: dict[str, int] = {}
    for table in ("users", "products", "transactions"):
        found = latest.get(f"prepared_{table}") or {}
        for reason, count in (found.get("metadata", {}).get("dropped_by_reason") or {}).items():
            out[reason] = out.get(reason, 0) + int(count)
    return out
