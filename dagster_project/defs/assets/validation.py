"""The validation report: per-check results and the quality score, gated by `quality_gate`."""

import dagster as dg
import pandas as pd

from dagster_project import validation
from dagster_project.defs.run_config import ValidationConfig


def checks_markdown(report: validation.ValidationReport) -> str:
    rows = [f"| {c.entity} | {c.name} | {c.severity} | {'skipped' if c.skipped else ('pass' if c.passed else 'FAIL')} "
            f"| {c.failing_rows} | {c.total_rows} |" for c in report.checks]
    return "| table | check | severity | result | failing rows | rows |\n|---|---|---|---|---|---|\n" + "\n".join(rows)


@dg.asset(group_name="validation", kinds={"pandas", "json"})
def validation_report(context: dg.AssetExecutionContext, config: ValidationConfig, raw_users: pd.DataFrame,
                      raw_products: pd.DataFrame, raw_transactions: pd.DataFrame) -> dg.Output[dict]:
    """Every data-quality rule over the raw tables, and the quality score (share of records with no defect)."""
    report = validation.validate(validation.Frames(raw_users, raw_products, raw_transactions))
    context.log.info(f"Quality score {report.quality_score} ({report.invalid_records} of {report.total_records} "
                     f"records with a defect); threshold {config.min_quality_score}")
    payload = {**report.to_dict(), "min_quality_score": config.min_quality_score,
               "gate_passed": report.quality_score >= config.min_quality_score}
    return dg.Output(payload, metadata={
        "quality_score": dg.MetadataValue.float(report.quality_score),
        "min_quality_score": dg.MetadataValue.float(config.min_quality_score),
        "invalid_records": dg.MetadataValue.int(report.invalid_records),
        "failed_checks": dg.MetadataValue.int(len(report.failed())),
        "checks": dg.MetadataValue.md(checks_markdown(report)),
    })
