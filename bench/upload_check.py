"""How long an operator waits for an upload's verdict, and for accepting it: the transactions export of a
generated shop uploaded as it is (CSV) and gzip-compressed, checked with the pipeline's readers and rules
against the other tables in the data folder (dagster_project/uploads.py), then accepted.

    python -m bench.upload_check --sizes 100k 1m
"""

from __future__ import annotations

import argparse
import gzip
import resource
import tempfile
import time
from pathlib import Path

from dagster_project import uploads
from dagster_project.sample_data import generate

SIZES = {"100k": 100_000, "1m": 1_000_000, "3m": 3_000_000}


def measure(transactions: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, users=transactions // 10, products=min(transactions // 100, 20_000), transactions=transactions)
        raw = (data / "transactions.csv").read_bytes()
        for name, payload in (("transactions.csv", raw), ("transactions.csv.gz", gzip.compress(raw, 6))):
            upload = uploads.Upload(name, payload)
            start = time.perf_counter()
            verdict = uploads.check([upload], data, 50.0)
            checked = time.perf_counter() - start
            start = time.perf_counter()
            _, done = uploads.accept([upload], data, 50.0)
            accepted = time.perf_counter() - start
            assert verdict.accepted and done is not None, verdict.refusals
            uploads.restore(data, done.kept.name)
            rows.append(
                {
                    "file": name,
                    "transactions": transactions,
                    "MB": len(payload) / 1e6,
                    "check_s": checked,
                    "accept_s": accepted,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["100k", "1m"], choices=list(SIZES))
    args = parser.parse_args()
    print("| file | transactions | upload (MB) | check (s) | accept: check again + write (s) | peak RSS so far (MB) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        for r in measure(SIZES[size]):
            print(
                f"| {r['file']} | {r['transactions']:,} | {r['MB']:.1f} | {r['check_s']:.2f} | {r['accept_s']:.2f} "
                f"| {r['peak_rss_mb']:,.0f} |"
            )


if __name__ == "__main__":
    main()
