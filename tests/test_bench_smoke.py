"""The benchmarks run end to end on small data (their figures are in docs/BENCHMARKS.md, not asserted)."""

import pytest

from bench import scale

pytestmark = pytest.mark.slow


def test_scale_benchmark_at_100k(tmp_path):
    row = scale.run_size("100k", tmp_path)
    assert set(scale.STEPS) <= set(row["steps"])
    assert row["transactions"] == 100_000 and row["storage_mb"] > 1 and row["model_mb"] > 0
    assert row["plain_stages"]["train"] > 0 and row["overhead"] > 0
    assert "| 100k | 100,000 |" in scale.table([row])
