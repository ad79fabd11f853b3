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


def gate_message(report: dict) -> str:
    """Why the gate failed, in the user's terms: the worst checks, where, and what to do."""
    lines = [f"Quality score {report['quality_score']} is below the threshold {report['min_quality_score']}: the run "
             f"stopped before preparation and training, and the current model stays in place."]
    for entity, columns in report.get("schema_errors", {}).items():
        lines.append(f"- {entity}: required column(s) {', '.join(columns)} missing.")
    failed = sorted((c for c in report["checks"] if not c["passed"]), key=lambda c: -c["failing_rows"])
    for check in failed[:3]:
        example = check["examples"][0] if check["examples"] else {}
        where = f" (e.g. {example.get('source_file')} row {example.get('source_row')})" if example else ""
        lines.append(f"- {check['name']} on {check['entity']}: {check['failing_rows']} of {check['total_rows']} rows "
                     f"fail '{check['description']}'{where}.")
    lines.append("Fix those rows in the export, or lower the minimum quality score (Refresh options in the app, "
                 "or validation_report.min_quality_score in run config) if they are expected.")
    return "\n".join(lines)


@dg.asset_check(asset="validation_report", blocking=True,
                description="The quality score is at least the configured threshold; below it, training stops.")
def quality_gate(validation_report: dict) -> dg.AssetCheckResult:
    score, threshold = validation_report["quality_score"], validation_report["min_quality_score"]
    return dg.AssetCheckResult(
        passed=score >= threshold, severity=dg.AssetCheckSeverity.ERROR,
        description=None if score >= threshold else gate_message(validation_report),
        metadata={"quality_score": float(score), "min_quality_score": float(threshold)})
