"""Pipeline at scale: complete_pipeline_job through Dagster vs the same functions in a plain script.

For each size the project's generator makes a dataset (users = transactions/10, products =
transactions/100 capped at 20,000), then `dagster job execute` runs the complete job on a fresh
instance and `bench/plain_pipeline.py` runs the same pure functions; both are measured for wall time
and peak RSS. Per-stage times come from the Dagster run's step stats; the customer lists
(`user_recommendations`) also report their own wall and CPU seconds. Prints a Markdown table.

    python -m bench.scale --sizes 3k 100k 1m 10m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SIZES = {
    "3k": (1383, 101, 3001),
    "100k": (10_000, 1_000, 100_000),
    "1m": (100_000, 10_000, 1_000_000),
    "10m": (1_000_000, 20_000, 10_000_000),
}
STEPS = [
    "raw_data",
    "validation_report",
    "prepared_data",
    "feature_tables",
    "collaborative_filtering_model",
    "user_recommendations",
]
BIN = Path(sys.executable).parent


def dataset(name: str, cache: Path) -> Path:
    users, products, transactions = SIZES[name]
    out = cache / name
    if not (out / "transactions.csv").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster_project.sample_data",
                "--users",
                str(users),
                "--products",
                str(products),
                "--transactions",
                str(transactions),
                "--seed",
                "42",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def measured(cmd: list[str], env: dict, work: Path, tag: str) -> dict:
    result = work / f"{tag}.json"
    log = work / f"{tag}.log"
    with open(log, "wb") as handle:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "measure.py"), str(result), "--", *cmd],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise RuntimeError(f"{tag} failed; see {log}:\n{log.read_text()[-3000:]}")
    return {**json.loads(result.read_text()), "log": log}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_size(name: str, cache: Path, plain: bool = True) -> dict:
    import dagster as dg

    data = dataset(name, cache)
    work = Path(tempfile.mkdtemp(prefix=f"recomart-scale-{name}-"))
    try:
        home = work / "home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "RECOMART_DATA_DIR": str(data),
            "RECOMART_STORAGE_DIR": str(work / "storage"),
            "RECOMART_MODELS_DIR": str(work / "models"),
        }
        command = [str(BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions"]
        dagster = measured(
            [*command, "-j", "complete_pipeline_job"],
            env,
            work,
            "dagster",
        )
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = instance.get_runs(limit=1)[0]
            steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run.run_id)}
            lists = instance.get_latest_materialization_event(dg.AssetKey("user_recommendations"))
            lists_meta = {k: v.value for k, v in lists.asset_materialization.metadata.items()}
        row = {
            "size": name,
            "transactions": SIZES[name][2],
            "dagster_wall_s": dagster["wall_s"],
            "dagster_peak_rss_mb": dagster["peak_rss_mb"],
            "steps": steps,
            "lists_s": lists_meta["seconds"],  # the customer lists' own time, as the asset measured it
            "lists_cpu_s": lists_meta["cpu_seconds"],
            "customers": lists_meta["customers"],
            "storage_mb": round(folder_size(work / "storage") / 2**20, 1),
            "model_mb": round((work / "models" / "collaborative_filtering.pkl").stat().st_size / 2**20, 1),
        }
        if plain:
            out = measured(
                [
                    sys.executable,
                    str(ROOT / "bench" / "plain_pipeline.py"),
                    "--data",
                    str(data),
                    "--storage",
                    str(work / "plain_storage"),
                    "--models",
                    str(work / "plain_models"),
                ],
                env,
                work,
                "plain",
            )
            row.update(
                plain_wall_s=out["wall_s"],
                plain_peak_rss_mb=out["peak_rss_mb"],
                plain_stages=json.loads(out["log"].read_text().strip().splitlines()[-1]),
                overhead=round(dagster["wall_s"] / out["wall_s"], 2),
            )
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(rows: list[dict]) -> str:
    head = (
        "| size | transactions | Dagster wall (s) | " + " | ".join(STEPS) + " | peak RSS (MB) | plain wall (s) | "
        "plain RSS (MB) | overhead | storage (MB) | model (MB) | customer lists: customers, wall (s), CPU (s) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        steps = " | ".join(f"{r['steps'].get(s, 0):.1f}" for s in STEPS)
        lines.append(
            f"| {r['size']} | {r['transactions']:,} | {r['dagster_wall_s']:.1f} | {steps} | "
            f"{r['dagster_peak_rss_mb']:.0f} | {r.get('plain_wall_s', float('nan')):.1f} | "
            f"{r.get('plain_peak_rss_mb', float('nan')):.0f} | {r.get('overhead', float('nan')):.2f}x | "
            f"{r['storage_mb']} | {r['model_mb']} | {r['customers']:,}, {r['lists_s']:.1f}, {r['lists_cpu_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["3k", "100k", "1m"], choices=list(SIZES))
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "bench" / ".data", help="where generated datasets are kept"
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-script comparison")
    args = parser.parse_args()
    rows = []
    for name in args.sizes:
        rows.append(run_size(name, args.cache, plain=not args.no_plain))
        print(json.dumps({k: v for k, v in rows[-1].items()}, default=str), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
