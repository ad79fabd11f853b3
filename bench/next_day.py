"""The nightly refresh of new data only, again and again on one kept state: wall, peak RSS and seconds per step.

`bench.scale --keep DIR` leaves a base run's instance, storage and models in DIR. Each run here works on a
copy of it (files over 1 MB hard-linked: every output is written to a temporary file and renamed over, so the
kept state is never changed; the Dagster instance copied), adds the next day's export as `bench.scale
--increment` does, and runs the complete job as the schedule's refresh of new data only.

    python -m bench.scale --sizes 10m --no-plain --keep /tmp/state-10m
    python -m bench.next_day --state /tmp/state-10m [--runs 3]
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


def run_once(state: Path) -> dict:
    import dagster as dg

    saved = json.loads((state / "state.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="recomart-next-day-"))
    try:
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
        tags = new_data_tags(home, data, work / "storage")
        command = [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions"]
        run = measured([*command, "-j", "complete_pipeline_job", "--tags", json.dumps(tags)], env, work, "next")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            stats = instance.get_run_step_stats(instance.get_runs(limit=1)[0].run_id)
            steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats}
            lists = instance.get_latest_materialization_event(dg.AssetKey("user_recommendations"))
            meta = {k: v.value for k, v in lists.asset_materialization.metadata.items()}
        figures = {"size": saved["size"], "wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"], "steps": steps}
        # the customer lists' own wall and CPU seconds, as the asset measured them (CPU: what load cannot inflate)
        return {**figures, "lists_s": meta.get("seconds"), "lists_cpu_s": meta.get("cpu_seconds")}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a folder `bench.scale --keep` made")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for _ in range(max(1, min(args.runs, 10))):
        print(json.dumps(run_once(args.state)), flush=True)


if __name__ == "__main__":
    main()
