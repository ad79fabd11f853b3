"""A step's progress lines, logged as one entry: every log line is one write to Dagster's event log
(about 3 ms of CPU and a database commit each), so a step reading 366 files logs once, not 366 times."""

from __future__ import annotations

import dagster as dg

MOST_LINES = 40  # lines shown in full; each file's figures are in its partition's metadata anyway


class Lines:
    """Lines gathered by `add` (safe from threads) and logged together by `log`."""

    def __init__(self, context: dg.AssetExecutionContext) -> None:
        self.context, self.lines = context, []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def log(self) -> None:
        lines, self.lines = self.lines, []
        if len(lines) > MOST_LINES:
            lines = [*lines[: MOST_LINES - 1], f"... and {len(lines) - MOST_LINES + 1} more"]
        if lines:
            self.context.log.info("\n".join(lines))
