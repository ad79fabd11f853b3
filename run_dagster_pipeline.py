"""Run the RecoMart pipeline from Python, or start the Dagster UI.

python run_dagster_pipeline.py                   # complete pipeline
python run_dagster_pipeline.py --ingestion-only  # ingestion only
python run_dagster_pipeline.py --ui              # Dagster UI (webserver + daemon) on 127.0.0.1:3000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def dagster_home() -> Path:
    """The project-local Dagster home (unless DAGSTER_HOME is set), with the project's instance config."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def run(job_name: str) -> bool:
    import dagster as dg

    from dagster_project.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)
    print(f"{job_name}: {'success' if result.success else 'FAILED'} (run {result.run_id})")
    return result.success


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingestion-only", action="store_true", help="run ingestion_job only")
    parser.add_argument("--ui", action="store_true", help="start the Dagster UI instead of running a job")
    # The Dagster webserver has no sign-in: loopback only, whatever RECOMART_BIND_HOST (the app's) says.
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", default=os.environ.get("DAGSTER_PORT", "3000"))
    args = parser.parse_args()
    dagster_home()
    if args.ui:
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-m",
                "dagster_project.definitions",
                "-h",
                args.host,
                "-p",
                str(args.port),
            ],
            cwd=ROOT,
        )
    return 0 if run("ingestion_job" if args.ingestion_only else "complete_pipeline_job") else 1


if __name__ == "__main__":
    sys.exit(main())
