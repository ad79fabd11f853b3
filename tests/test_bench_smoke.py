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


def test_nights_on_a_kept_state_at_3k(tmp_path):
    """bench.scale --keep, then bench.next_day and bench.step_profile on copies of what it kept."""
    from bench import next_day, step_profile

    state = tmp_path / "state"
    scale.run_size("3k", tmp_path / "cache", plain=False, keep=state)
    kept = {p.name: p.stat().st_mtime_ns for p in (state / "storage").rglob("*") if p.is_file()}
    nights = next_day.run_once(state, nights=2)
    assert [n["night"] for n in nights] == [1, 2] and nights[1]["new_file"]
    assert all(n["wall_s"] > 0 and n["lists_cpu_s"] is not None for n in nights)
    [profiled] = step_profile.run_once(state)
    assert set(scale.STEPS) <= set(profiled["steps"])
    assert {p.name: p.stat().st_mtime_ns for p in (state / "storage").rglob("*") if p.is_file()} == kept  # untouched
