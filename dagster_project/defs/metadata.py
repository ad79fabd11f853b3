"""Materialization metadata every stored output carries: records, schema, path, size, checksum."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project.fileio import sha256_of


def table_out(description: str) -> dg.AssetOut:
    """An output stored as Parquet by the storage IO manager."""
    return dg.AssetOut(description=description, kinds={"pandas", "parquet"})


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(str(c), str(t)) for c, t in frame.dtypes.items()])


def file_metadata(path: Path, records: int | None = None, frame: pd.DataFrame | None = None) -> dict:
    meta: dict = {
        "path": dg.MetadataValue.path(str(path)),
        "size_bytes": dg.MetadataValue.int(path.stat().st_size),
        "sha256": dg.MetadataValue.text(sha256_of(path)),
    }
    if records is not None:
        meta["records"] = dg.MetadataValue.int(records)
        meta["dagster/row_count"] = dg.MetadataValue.int(records)
    if frame is not None:
        meta["dagster/column_schema"] = table_schema(frame)
        meta["preview"] = dg.MetadataValue.md(frame.head(5).astype(str).to_markdown(index=False))
    return meta


def counts_table(counts: dict[str, int]) -> dg.MetadataValue:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| (none) | 0 |"
    return dg.MetadataValue.md(f"| reason | rows |\n|---|---|\n{rows}")
