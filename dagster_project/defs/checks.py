"""Asset checks: one per data-quality rule on the raw tables, and the quality gate.

Rule checks never block (preparation drops or fixes what they find; the report counts it). They are
declared on the ingestion step, which runs the rules once while the raw frames are in memory, so
`ingestion_job` shows them too. The quality gate blocks: when the score is below the threshold (the whole
data's, or one purchase file's: a file that is unusable on its own stops it too),
nothing downstream of the validation report runs, so the prepared data, features and the served
model stay as the last good run left them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dagster as dg

from dagster_project import validation
from dagster_project.validation import ValidationReport

SEVERITY = {validation.ERROR: dg.AssetCheckSeverity.ERROR, validation.WARN: dg.AssetCheckSeverity.WARN}


def rule_check_specs(tables: Mapping[str, str]) -> list[dg.AssetCheckSpec]:
    """One check per rule, on the raw table (`tables`: entity -> asset name) the rule reads."""
    return [
        dg.AssetCheckSpec(rule.name, asset=tables[rule.entity], description=rule.description)
        for rule in validation.RULES
        if rule.entity in tables
    ]


def check_results(report: ValidationReport, tables: Mapping[str, str]) -> Iterator[dg.AssetCheckResult]:
    for check in report.checks:
        if check.entity not in tables:
            continue
        yield dg.AssetCheckResult(
            asset_key=tables[check.entity],
            check_name=check.name,
            passed=check.passed,
            severity=SEVERITY[check.severity],
            description=check.description + (" (skipped: column absent)" if check.skipped else ""),
            metadata={
                "failing_rows": check.failing_rows,
                "total_rows": check.total_rows,
                "failing_share": round(check.failing_share, 4),
                "skipped": check.skipped,
                "examples": check.examples,
            },
        )


@dg.asset_check(
    asset="validation_report",
    blocking=True,
    description="The quality score is at least the configured threshold, for the data as a whole and for each "
    "purchase file; below it, training stops.",
)
def quality_gate(validation_report: ValidationReport) -> dg.AssetCheckResult:
    passed = bool(validation_report.gate_passed)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if passed else validation_report.gate_message(),
        metadata={
            "quality_score": float(validation_report.quality_score),
            "min_quality_score": float(validation_report.min_quality_score or 0.0),
            "files_below_threshold": dg.MetadataValue.json(
                {f.file: f.quality_score for f in validation_report.files_below}
            ),
        },
    )
