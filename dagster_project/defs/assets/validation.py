"""The validation report: per-check results and the quality score, gated by `quality_gate`."""

import dagster as dg

from dagster_project.defs import rule_results
from dagster_project.defs.assets import ingestion
from dagster_project.defs.metadata import stored_at
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import ValidationConfig
from dagster_project.validation import ValidationReport


def checks_markdown(report: ValidationReport) -> str:
    rows = [
        f"| {c.entity} | {c.name} | {c.severity} | {'skipped' if c.skipped else ('pass' if c.passed else 'FAIL')} "
        f"| {c.failing_rows} | {c.total_rows} |"
        for c in report.checks
    ]
    return "| table | check | severity | result | failing rows | rows |\n|---|---|---|---|---|---|\n" + "\n".join(rows)


@dg.asset(
    group_name="validation",
    kinds={"json"},
    deps=[ingestion.raw_data],
    metadata=stored_at("validation/validation_report.json"),
)
def validation_report(
    context: dg.AssetExecutionContext, config: ValidationConfig, paths: RecoMartPaths
) -> dg.Output[ValidationReport]:
    """Every data-quality rule's result on the raw tables, and the quality score (share of records with no defect).

    The rules ran in the ingestion step that wrote the raw tables; their stored result is judged here
    against this run's threshold.
    """
    report = rule_results.load(context, paths, ingestion.raw_data.keys).judged(config.min_quality_score)
    context.log.info(
        f"Quality score {report.quality_score} ({report.invalid_records} of {report.total_records} "
        f"records with a defect); threshold {config.min_quality_score}"
    )
    return dg.Output(
        report,
        metadata={
            "quality_score": float(report.quality_score),
            "min_quality_score": float(config.min_quality_score),
            "invalid_records": report.invalid_records,
            "failed_checks": len(report.failed()),
            "checks": dg.MetadataValue.md(checks_markdown(report)),
        },
    )
