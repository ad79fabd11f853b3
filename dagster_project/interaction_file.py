"""How the interaction table is laid out in its Parquet file: the codec and each column's encoding.

The nightly update reads and writes the whole table (6.7M pairs at 10M purchases), so its layout is what
that costs. Measured on the 10M table per column (CPU seconds to write, to read, MB; docs/BENCHMARKS.md):

- Codec LZ4, not snappy: the same size, decoding half the CPU (strings 0.08 s instead of 0.17 a column).
- `user_id` plain: 548,000 different ids in a row group of a million pairs fill the 1 MB dictionary page
  and fall back to plain anyway; trying first only costs (the same 41 MB either way).
- `product_id`, `spend`, `confidence` through a dictionary: 20,000 products, 40,000 amounts and 61 values
  a row group (spend: 14 MB instead of 30, read in a quarter of the CPU).
- Whole numbers and times (`purchases`, `quantity`, `first_purchase`, `last_purchase`) delta-encoded:
  pairs come in order of first purchase, so `first_purchase` takes 12 MB instead of 37.
- No min/max statistics on the ids: nothing filters this table by id, and they cost 0.06-0.09 s a column.

A layout changes no value: every reader (`pd.read_parquet`, Arrow) reads the same table from either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ATTRS_KEY = b"PANDAS_ATTRS"  # where pandas keeps a frame's attrs in Parquet metadata (and so `covers`)
COMPRESSION = "lz4"
DICTIONARY = ("product_id", "spend", "confidence")
NO_STATISTICS = ("user_id", "product_id")


def options(schema: pa.Schema) -> dict:
    """`pq.ParquetWriter` settings for an interaction table of `schema` (columns it lacks are left out)."""
    delta = [
        f.name
        for f in schema
        if f.name not in DICTIONARY and (pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type))
    ]
    return {
        "compression": COMPRESSION,
        "use_dictionary": [name for name in DICTIONARY if name in schema.names],
        "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
        "write_statistics": [name for name in schema.names if name not in NO_STATISTICS],
    }


def with_attrs(schema: pa.Schema, attrs: dict) -> pa.Schema:
    """`schema` carrying `attrs` where pandas keeps them, so `pd.read_parquet(...).attrs` reads them back."""
    return schema.with_metadata({**(schema.metadata or {}), ATTRS_KEY: json.dumps(attrs).encode()})


def writer(target: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer of the interaction table at `target`, row group by row group."""
    return pq.ParquetWriter(target, schema, **options(schema))


def write(frame: pd.DataFrame, target: Path, attrs: dict, rows_per_group: int | None = None) -> None:
    """`frame` at `target` as `frame.to_parquet(index=False)` writes it (pandas' metadata, `attrs` kept where pandas
    keeps them), in this layout."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(with_attrs(table.schema, attrs).metadata)
    pq.write_table(table, target, row_group_size=rows_per_group, **options(table.schema))
