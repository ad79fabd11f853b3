"""Asset checks: one per data-quality rule on the raw tables, and the quality gate.

Rule checks never block (preparation drops or fixes what they find; the report counts it). The
quality gate blocks: when the score is below the threshold, nothing downstream of the validation
report runs, so the prepared data, features and the served model stay as the last good run left them.
"""

import dagster as dg

from dagster_project import validation

SEVERITY = {validation.ERROR: dg.AssetCheckSeverity.ERROR, validation.WARN: dg.AssetCheckSeverity.WARN}


def rule_check_specs() -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(rule.name, asset=f"raw_{rule.entity}", description=rule.description)
            for rule in validation.RULES]


def check_results(report: validation.ValidationReport):
    for check in report.checks:
        yield dg.AssetCheckResult(
            asset_key=f"raw_{check.entity}", check_name=check.name, passed=check.passed,
            severity=SEVERITY[check.severity],
            description=check.description + (" (skipped: column absent)" if check.skipped else ""),
            metadata={"failing_rows": check.failing_rows, "total_rows": check.total_rows,
                      "failing_share": round(check.failing_share, 4), "skipped": check.skipped,
                      "examples": dg.MetadataValue.json(check.examples)})


@dg.asset_check(asset="validation_report", blocking=True,
                description="The quality score is at least the configured threshold; below it, training stops.")
def quality_gate(validation_report: dict) -> dg.AssetCheckResult:
    score, threshold = validation_report["quality_score"], validation_report["min_quality_score"]
    return dg.AssetCheckResult(
        passed=score >= threshold, severity=dg.AssetCheckSeverity.ERROR,
        description=None if score >= threshold else (
            f"Quality score {score} is below the threshold {threshold}: the run stops before preparation "
            f"and training; the current model stays in place. See the validation report for the failing checks."),
        metadata={"quality_score": float(score), "min_quality_score": float(threshold)})
