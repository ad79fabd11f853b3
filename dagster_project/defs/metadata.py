"""Metadata: where each stored output lives, and what every stored output records about itself.

Plain values are enough where Dagster infers the type (int, float, str, bool, list, dict, Path,
TableSchema); only Markdown needs wrapping.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project.fileio import sha256_of

# Definition metadata the storage IO manager reads: the output's file under the storage folder, and the codec of
# a table (snappy unless said: a table read every night is cheaper to read in LZ4, docs/BENCHMARKS.md).
RELATIVE_PATH = "recomart/relative_path"
COMPRESSION = "recomart/compression"


def stored_at(relative_path: str) -> dict[str, str]:
    """Definition metadata for an output the IO manager stores: `{date}` is the day of the run (UTC)."""
    return {RELATIVE_PATH: relative_path}


def table_out(
    description: str,
    relative_path: str,
    freshness_policy: dg.FreshnessPolicy | None = None,
    compression: str | None = None,
) -> dg.AssetOut:
    """An output stored as Parquet by the storage IO manager, at `relative_path` under the storage folder."""
    return dg.AssetOut(
        description=description,
        kinds={"pandas", "parquet"},
        metadata={**stored_at(relative_path), **({COMPRESSION: compression} if compression else {})},
        freshness_policy=freshness_policy,
    )


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(str(c), str(t)) for c, t in frame.dtypes.items()])


def file_metadata(
    path: Path, records: int | None = None, frame: pd.DataFrame | None = None, sha256: str | None = None
) -> dict:
    """`sha256`: the file's, when known already (else computed)."""
    meta: dict = {"path": path, "size_bytes": path.stat().st_size, "sha256": sha256 or sha256_of(path)}
    if records is not None:
        meta["records"] = meta["dagster/row_count"] = int(records)
    if frame is not None:
        meta["dagster/column_schema"] = table_schema(frame)
        meta["preview"] = dg.MetadataValue.md(frame.head(5).astype(str).to_markdown(index=False))
    return meta


def counts_table(counts: dict[str, int]) -> dg.MetadataValue:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| (none) | 0 |"
    return dg.MetadataValue.md(f"| reason | rows |\n|---|---|\n{rows}")
