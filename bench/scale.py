"""Pipeline at scale: complete_pipeline_job through Dagster vs the same functions in a plain script.

For each size the project's generator makes a dataset (users = transactions/10, products =
transactions/100 capped at 20,000; 100m too: 10 million customers buying ten times a year each is what a
shop with 100 million transactions a year looks like, and keeping the ratio keeps the sizes comparable),
then `dagster job execute` runs the complete job on a fresh instance and `bench/plain_pipeline.py` runs
the same pure functions; both are measured for wall time and peak RSS. Per-stage times come from the
Dagster run's step stats; the customer lists (`user_recommendations`) also report their own wall and CPU
seconds. Prints a Markdown table.

`--increment` then adds the next day's export (an average day's transactions, as
transactions_YYYY-MM-DD.csv) to a copy of the dataset folder made of hard links (no gigabytes copied;
the pipeline reads hard links like files, and refuses symbolic links leading out of its folder) and
runs the complete job again on the same instance and storage as a refresh of new data only, as the
nightly schedule does: the new file's partition is added, and the run's range tags name it alone (the
plan is `transaction_files.plan`, the schedule's own). A second table gives its wall, peak RSS, and the
purchase files and lines it read. `--daily-files` makes the datasets as one file per day.

    python -m bench.scale --sizes 3k 100k 1m 10m
    python -m bench.scale --sizes 10m --no-plain --increment
    python -m bench.scale --sizes 10m --no-plain --keep /tmp/state-10m   # then: python -m bench.next_day ...
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
    "100m": (10_000_000, 20_000, 100_000_000),  # generated in chunks; the pipeline does not fit it yet
}
STEPS = [
    "raw_data",
    "raw_transactions",
    "validation_report",
    "prepared_data",
    "prepared_transactions",
    "feature_tables",
    "collaborative_filtering_model",
    "user_recommendations",
]
BIN = Path(sys.executable).parent


def _generate(name: str, out: Path, *options: str) -> None:
    users, products, transactions = SIZES[name]
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
            *options,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def dataset(name: str, cache: Path, daily_files: bool = False) -> Path:
    out = cache / (f"{name}-daily" if daily_files else name)
    done = out / ("transactions_2026-10-31.csv" if daily_files else "transactions.csv")
    if not done.exists():
        _generate(name, out, *(["--daily-files"] if daily_files else []))
    return out


def with_next_day(name: str, data: Path, out: Path | None = None) -> Path:
    """A copy of the dataset folder, made of hard links, with the next day's export added."""
    out = out or data.parent / f"{data.name}+1day"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for path in data.iterdir():
        if path.is_file():
            os.link(path, out / path.name)
    _generate(name, out, "--next-day")
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


def run_size(
    name: str,
    cache: Path,
    plain: bool = True,
    increment: bool = False,
    daily_files: bool = False,
    keep: Path | None = None,
) -> dict:
    """One size's runs; `keep`: the folder for the base run's instance, storage and models, left in place so
    `bench.next_day --state` can run the next day on copies of it again and again."""
    import dagster as dg

    data = dataset(name, cache, daily_files)
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
    work = keep if keep is not None else Path(tempfile.mkdtemp(prefix=f"recomart-scale-{name}-"))
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
        if increment:
            bigger = with_next_day(name, data)
            added = sorted(set(bigger.iterdir()) - {bigger / p.name for p in data.iterdir()})
            tags = new_data_tags(home, bigger, work / "storage")
            run = measured(
                [*command, "-j", "complete_pipeline_job", "--tags", json.dumps(tags)],
                {**env, "RECOMART_DATA_DIR": str(bigger)},
                work,
                "next",
            )
            with dg.DagsterInstance.from_config(str(home)) as instance:
                raw = instance.get_latest_materialization_event(dg.AssetKey("raw_transactions"))
                latest = instance.get_runs(limit=1)[0]
                next_steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(latest.run_id)}
            meta = raw.asset_materialization.metadata
            row["increment"] = {
                "file": added[0].name,
                "rows": sum(1 for _ in added[0].open()) - 1,
                "files_read": meta["run_files"].value,  # the purchase files the run read
                "read": meta["run_records"].value,  # the purchase lines the run read
                "range": f"{tags.get('dagster/asset_partition_range_start')} .. "
                f"{tags.get('dagster/asset_partition_range_end')}",
                "wall_s": run["wall_s"],
                "peak_rss_mb": run["peak_rss_mb"],
                "steps": next_steps,
            }
            shutil.rmtree(bigger, ignore_errors=True)
        if keep is not None:
            (keep / "state.json").write_text(json.dumps({"size": name, "data": str(data)}))
        return row
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def new_data_tags(home: Path, data: Path, storage: Path) -> dict[str, str]:
    """What the nightly schedule does before its run: add the new files' partitions, return the range tags."""
    import dagster as dg

    from dagster_project import data_files, transaction_files, transaction_store

    with dg.DagsterInstance.from_config(str(home)) as instance:
        keys = instance.get_dynamic_partitions(transaction_files.PARTITIONS_NAME)
        scanned = data_files.scan(data)
        files = transaction_files.current_files(scanned)
        plan = transaction_files.plan(
            files, transaction_store.prepared_state(storage, transaction_files.reference(scanned)), keys
        )
        if plan.add:
            instance.add_dynamic_partitions(transaction_files.PARTITIONS_NAME, plan.add)
    return {**plan.tags(), "recomart/refresh": transaction_files.NEW_DATA}


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


def increment_table(rows: list[dict]) -> str:
    lines = [
        "| size | next day's file | its rows | files read | purchase lines read | Dagster wall (s) | peak RSS (MB) |"
        " steps (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "increment" in r:
            i = r["increment"]
            steps = ", ".join(f"{k} {v:.1f}" for k, v in i["steps"].items())
            lines.append(
                f"| {r['size']} | {i['file']} | {i['rows']:,} | {i['files_read']:,} | {i['read']:,} | "
                f"{i['wall_s']:.1f} | {i['peak_rss_mb']:.0f} | {steps} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["3k", "100k", "1m"], choices=list(SIZES))
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "bench" / ".data", help="where generated datasets are kept"
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-script comparison")
    parser.add_argument(
        "--increment", action="store_true", help="then add the next day's export and run the pipeline again"
    )
    parser.add_argument("--daily-files", action="store_true", help="datasets as one transactions file per day")
    parser.add_argument(
        "--keep", type=Path, help="keep the base run's instance, storage and models here (one size; bench.next_day)"
    )
    args = parser.parse_args()
    if args.keep and (len(args.sizes) > 1 or args.increment):
        parser.error("--keep takes one size and no --increment (run bench.next_day --state on it)")
    rows = []
    for name in args.sizes:
        rows.append(
            run_size(
                name,
                args.cache,
                plain=not args.no_plain,
                increment=args.increment,
                daily_files=args.daily_files,
                keep=args.keep,
            )
        )
        print(json.dumps({k: v for k, v in rows[-1].items()}, default=str), flush=True)
    print()
    print(table(rows))
    if args.increment:
        print()
        print(increment_table(rows))


if __name__ == "__main__":
    main()
