"""Run a command and record its wall time and peak RSS (the largest process of its tree).

A fresh wrapper process per measurement, so RUSAGE_CHILDREN covers only the measured command.
    python bench/measure.py RESULT.json -- CMD ARGS...
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    result, cmd = Path(sys.argv[1]), sys.argv[sys.argv.index("--") + 1 :]
    start = time.perf_counter()
    done = subprocess.run(cmd)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result.write_text(
        json.dumps({"wall_s": round(wall, 3), "peak_rss_mb": round(peak_kb / 1024, 1), "returncode": done.returncode})
    )
    sys.exit(done.returncode)
