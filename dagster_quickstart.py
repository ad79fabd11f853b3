"""The RecoMart menu in Python: pick what to do, it runs `run_pipeline.sh` (or the .bat) for you."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CHOICES = [
    ("up", "Pipeline if needed, then the Dagster UI (3000) and the app (8501)"),
    ("run", "Run the complete pipeline"),
    ("ingest", "Run ingestion only"),
    ("ui", "Start the Dagster UI"),
    ("app", "Start the Streamlit app"),
    ("test", "Run the test suite"),
    ("install", "Install or update the environment"),
]


def main() -> int:
    script = (
        ["cmd", "/c", str(ROOT / "run_pipeline.bat")] if os.name == "nt" else ["bash", str(ROOT / "run_pipeline.sh")]
    )
    while True:
        print("\nRecoMart")
        for number, (name, text) in enumerate(CHOICES, start=1):
            print(f"  {number}. {name:8} {text}")
        print("  q. quit")
        answer = input("> ").strip().lower()
        if answer in ("q", "quit", ""):
            return 0
        names = [name for name, _ in CHOICES]
        chosen = names[int(answer) - 1] if answer.isdigit() and 0 < int(answer) <= len(CHOICES) else answer
        if chosen not in names:
            print(f"Unknown choice {answer!r}")
            continue
        subprocess.call([*script, chosen], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
