"""The validation report: per-check results and the quality score, gated by `quality_gate`."""

import dagster as dg

from dagster_project.defs import rule_results
from dagster_project.defs.assets import ingestion
from dagster_project.defs.metadata import stored_at
from dagster_project.defs.partitions import current_keys
from dagster_project.defs.resources import RecoMartPaths
from dagster_project.defs.run_config import ValidationConfig
from dagster_project.validation import ValidationReport, combine


def checks_markdown(report: ValidationReport) -> str:
    rows = [
        f"| {c.entity} | {c.name} | {c.severity} | {'skipped' if c.skipped else ('pass' if c.passed else 'FAIL')} "
        f"| {c.failing_rows} | {c.total_rows} |"
        for c in report.checks
    ]
    return "| table | check | severity | result | failing rows | rows |\n|---|---|---|---|---|---|\n" + "\n".join(rows)


def files_markdown(parts: dict[str, ValidationReport]) -> str:
    """Each transactions file's records, records with a defect and quality score (as last read)."""
    rows = [f"| {key} | {p.total_records} | {p.invalid_records} | {p.quality_score} |" for key, p in parts.items()]
    return "| file | records | with a defect | quality score |\n|---|---|---|---|\n" + "\n".join(rows)


@dg.asset(
    group_name="validation",
    kinds={"json"},
    deps=[ingestion.raw_data, ingestion.raw_transactions],
    metadata=stored_at("validation/validation_report.json"),
)
def validation_report(
    context: dg.AssetExecutionContext, config: ValidationConfig, paths: RecoMartPaths
) -> dg.Output[ValidationReport]:
    """Every data-quality rule's result on the raw tables, and the quality score (share of records with no defect).

    The rules ran where the raw tables were read: users and products in this run, each transactions file
    when it was last read. Their stored results are combined (every current file) and judged here
    against this run's threshold; each file's own score is in the metadata.
    """
    whole = rule_results.load(context, paths, ingestion.raw_data.keys)
    parts, unread = {}, []
    for key in sorted(current_keys(context.instance)):
        stored = rule_results.load_partition(paths, key)
        if stored is None:
            unread.append(key)
        else:
            parts[key] = stored[0]
    if unread:
        raise dg.Failure(
            description=f"{len(unread)} purchase file(s) have not been read yet ({', '.join(unread)[:300]}): "
            "refresh with 'everything' (or new data only) to read them.",
            allow_retries=False,
        )
    # judged as a whole and file by file: one unusable file stops the gate even when the rest is good
    report = combine([whole, *parts.values()]).judged(config.min_quality_score, parts)
    context.log.info(
        f"Quality score {report.quality_score} ({report.invalid_records} of {report.total_records} "
        f"records with a defect); threshold {config.min_quality_score}"
    )
    for below in report.files_below:
        context.log.warning(below.words(config.min_quality_score))
    return dg.Output(
        report,
        metadata={
            "quality_score": float(report.quality_score),
            "min_quality_score": float(config.min_quality_score),
            "invalid_records": report.invalid_records,
            "failed_checks": len(report.failed()),
            "checks": dg.MetadataValue.md(checks_markdown(report)),
            "purchase_files": len(parts),
            "purchase_records": int(report.records.get("transactions", 0)),
            "quality_by_file": dg.MetadataValue.md(files_markdown(parts)),
            # purchase files whose own score stops the gate (file -> its score), for the app's verdict
            "files_below_threshold": dg.MetadataValue.json({f.file: f.quality_score for f in report.files_below}),
        },
    )
