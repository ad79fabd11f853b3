"""The nightly refresh of new data only on a copy of a kept state, with CPU seconds and peak RSS per step.

The job runs its steps in one process (the in-process executor), so its RSS and CPU time are sampled
every 50 ms from /proc and each step gets the samples between its start and end: what a step held (the
process's whole RSS while it ran, so it includes what earlier steps left) and the CPU it used (all threads;
what a busy machine does not inflate, unlike wall seconds).

    python -m bench.scale --sizes 10m --no-plain --keep /tmp/state-10m
    python -m bench.step_profile --state /tmp/state-10m [--nights 2]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.next_day import copy_state, following_day, nightly_main
from bench.scale import BIN, new_data_tags

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    """CPU seconds of the process and its waited-for children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / TICKS


def _rss(pid: int) -> int:
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) * 1024


def _night(work: Path, home: Path, data: Path, env: dict) -> dict:
    """One refresh of new data only on the copy in `work`: wall, peak RSS, and per step CPU s, wall s, RSS."""
    import dagster as dg

    tags = new_data_tags(home, data, work / "storage")
    command = [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions"]
    command += ["-j", "complete_pipeline_job", "--tags", json.dumps(tags)]
    samples: list[tuple[float, int, float | None]] = []
    start = time.time()
    with open(work / "run.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            samples.append((time.time(), _rss(process.pid), _cpu(process.pid)))
            time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"the run failed:\n{(work / 'run.log').read_text()[-3000:]}")
    wall = time.time() - start
    with dg.DagsterInstance.from_config(str(home)) as instance:
        stats = instance.get_run_step_stats(instance.get_runs(limit=1)[0].run_id)
    steps = {}
    for step in stats:
        inside = [(r, c) for t, r, c in samples if step.start_time <= t <= step.end_time and c is not None]
        steps[step.step_key] = {
            "wall_s": round(step.end_time - step.start_time, 2),
            "cpu_s": round(inside[-1][1] - inside[0][1], 2) if len(inside) > 1 else None,
            "peak_rss_mb": round(max((r for r, _ in inside), default=0) / 2**20),
        }
    peak = max((r for _, r, _ in samples), default=0)
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak / 2**20), "steps": steps}


def run_once(state: Path, nights: int = 1) -> list[dict]:
    """`nights` refreshes one after another on one copy of the state (night 2 on: the day after the last)."""
    saved = json.loads((state / "state.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="recomart-step-profile-"))
    try:
        home, data, env = copy_state(state, saved, work)
        results = []
        for night in range(1, nights + 1):
            if night > 1:
                following_day(data)
            extra = {"night": night} if nights > 1 else {}
            results.append({"size": saved["size"], **extra, **_night(work, home, data, env)})
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    nightly_main(
        run_once,
        __doc__,
        "refreshes one after another on one copy (2: the second reads what the first wrote, as every night after a "
        "change of the code does)",
    )


if __name__ == "__main__":
    main()
