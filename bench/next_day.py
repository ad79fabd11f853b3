"""The nightly refresh of new data only, again and again on one kept state: wall, peak RSS and seconds per step.

`bench.scale --keep DIR` leaves a base run's instance, storage and models in DIR. Each run here works on a
copy of it (files over 1 MB hard-linked: every output is written to a temporary file and renamed over, so the
kept state is never changed; the Dagster instance copied), adds the next day's export as `bench.scale
--increment` does, and runs the complete job as the schedule's refresh of new data only.

    python -m bench.scale --sizes 10m --no-plain --keep /tmp/state-10m
    python -m bench.next_day --state /tmp/state-10m [--runs 3] [--nights 2]

With `--nights 2` a second refresh follows on the same copy, a day later: the first night after a change of
the code reads the customers and products whole; the second finds them unchanged and uses the stored tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench.scale import BIN, measured, new_data_tags, with_next_day

LINK_OVER = 1 << 20


def _copy(source: Path, target: Path) -> None:
    """Large files hard-linked, small ones (the instance's databases, manifests) copied."""

    def one(src: str, dst: str) -> None:
        if os.path.getsize(src) > LINK_OVER:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=one, symlinks=True)


def copy_state(state: Path, saved: dict, work: Path) -> tuple[Path, Path, dict]:
    """A working copy of a kept state in `work` with the next day's export added: its Dagster home, data folder
    and the environment that points a run at them."""
    for part in ("home", "storage", "models"):
        _copy(state / part, work / part)
    home = work / "home"
    data = with_next_day(saved["size"], Path(saved["data"]), work / "data")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RECOMART_DATA_DIR": str(data),
        "RECOMART_STORAGE_DIR": str(work / "storage"),
        "RECOMART_MODELS_DIR": str(work / "models"),
    }
    return home, data, env


def following_day(data: Path) -> str:
    """Another night's export: the last daily file's lines one day later, with new transaction ids."""
    import pandas as pd

    last = sorted(data.glob("transactions_*.csv"))[-1]
    lines = pd.read_csv(last, dtype=str, keep_default_na=False)
    times = pd.to_datetime(lines["timestamp"], errors="coerce") + pd.Timedelta(days=1)
    lines["timestamp"] = times.dt.strftime("%Y-%m-%d %H:%M:%S").where(times.notna(), lines["timestamp"])
    lines["transaction_id"] = "N" + lines["transaction_id"]
    name = f"transactions_{pd.Timestamp(last.stem.rsplit('_', 1)[-1]) + pd.Timedelta(days=1):%Y-%m-%d}.csv"
    lines.to_csv(data / name, index=False)
    return name


def _fixed_cost(instance, run_id: str, wall_s: float) -> dict:
    """Where a run's seconds go besides its steps: before the run starts (the command, imports, loading the
    code), from the run's start to its first step, between steps, and after the last one."""
    stats = sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time)
    record = instance.get_run_record_by_id(run_id)
    return {
        "outside_run_s": round(wall_s - (record.end_time - record.start_time), 2),
        "to_first_step_s": round(stats[0].start_time - record.start_time, 2),
        "between_steps_s": round(sum(b.start_time - a.end_time for a, b in zip(stats, stats[1:])), 2),
        "after_last_step_s": round(record.end_time - stats[-1].end_time, 2),
    }


def run_once(state: Path, nights: int = 1) -> list[dict]:
    """`nights` refreshes one after another on one copy of the state (night 2 on: the day after the last)."""
    import resource

    import dagster as dg

    saved = json.loads((state / "state.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="recomart-next-day-"))
    try:
        home, data, env = copy_state(state, saved, work)
        results = []
        for night in range(1, nights + 1):
            new_file = following_day(data) if night > 1 else None
            tags = new_data_tags(home, data, work / "storage")
            command = [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions"]
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            run = measured([*command, "-j", "complete_pipeline_job", "--tags", json.dumps(tags)], env, work, "next")
            used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's CPU: what load cannot inflate
            cpu_s = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
            with dg.DagsterInstance.from_config(str(home)) as instance:
                run_id = instance.get_runs(limit=1)[0].run_id
                stats = instance.get_run_step_stats(run_id)
                steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats}
                lists = instance.get_latest_materialization_event(dg.AssetKey("user_recommendations"))
                meta = {k: v.value for k, v in lists.asset_materialization.metadata.items()}
                fixed = _fixed_cost(instance, run_id, run["wall_s"])
            figures = {"size": saved["size"], "wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"]}
            figures["steps"] = steps
            # the customer lists' own wall and CPU seconds, as the asset measured them
            figures.update({"lists_s": meta.get("seconds"), "lists_cpu_s": meta.get("cpu_seconds")})
            extra = {"night": night, "new_file": new_file} if nights > 1 else {}
            results.append({**figures, "cpu_s": round(cpu_s, 1), **fixed, **extra})
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def nightly_main(run_once, doc: str, nights_help: str) -> None:
    """The command line of a benchmark that runs `run_once(state, nights)` on a kept state and prints its figures."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a folder `bench.scale --keep` made")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--nights", type=int, default=1, help=nights_help)
    args = parser.parse_args()
    for _ in range(max(1, min(args.runs, 10))):  # bounded
        for figures in run_once(args.state, max(1, min(args.nights, 7))):
            print(json.dumps(figures), flush=True)


def main() -> None:
    nightly_main(
        run_once,
        __doc__,
        "refreshes one after another on one copy (2: the second finds the customers and products unchanged since "
        "the first)",
    )


if __name__ == "__main__":
    main()
