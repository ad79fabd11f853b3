"""Altair charts for the pages, built from plain DataFrames (so tests can read their data)."""

from __future__ import annotations

import altair as alt
import pandas as pd

TIME_AXIS = alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6)
STATUS_COLORS = alt.Scale(
    domain=["SUCCESS", "FAILURE", "CANCELED", "STARTED", "QUEUED"],
    range=["#2e7d32", "#c62828", "#757575", "#1565c0", "#f9a825"],
)


def run_durations(runs: pd.DataFrame) -> alt.Chart:
    """Duration of each finished run over time, one colour per job, failures marked."""
    data = runs.dropna(subset=["duration_s"])[["start", "duration_s", "job", "status", "run_id"]]
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", title="Started", axis=TIME_AXIS),
            y=alt.Y("duration_s:Q", title="Duration (s)"),
            color=alt.Color("job:N", title="Job"),
            shape=alt.Shape("status:N", title="Status"),
            tooltip=["job", "status", "run_id", alt.Tooltip("duration_s:Q", format=".1f")],
        )
        .properties(height=280)
    )


def step_durations(steps: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("duration_s:Q", title="Duration (s)"),
            y=alt.Y("step:N", sort=None, title=None),
            color=alt.Color("status:N", scale=STATUS_COLORS, legend=None),
            tooltip=["step", "status", alt.Tooltip("duration_s:Q", format=".2f")],
        )
        .properties(height=max(120, 28 * len(steps)))
    )


def quality_over_time(scores: pd.DataFrame, threshold: float | None = None) -> alt.Chart | alt.LayerChart:
    base = (
        alt.Chart(scores)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title="Validated", axis=TIME_AXIS),
            y=alt.Y("quality_score:Q", title="Quality score", scale=alt.Scale(domain=[0, 100])),
            tooltip=["time:T", "quality_score:Q", "run_id"],
        )
        .properties(height=260)
    )
    if threshold is None:
        return base
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#c62828", strokeDash=[4, 4])
        .encode(y="threshold:Q")
    )
    return base + rule


def records_per_stage(counts: pd.DataFrame) -> alt.Chart:
    """Records of each table at raw, prepared and feature stage."""
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("stage:N", sort=["raw", "prepared", "features"], title=None),
            y=alt.Y("records:Q", title="Records"),
            color=alt.Color("stage:N", legend=None),
            column=alt.Column("table:N", title=None),
            tooltip=["table", "stage", "records"],
        )
        .properties(width=150, height=220)
    )


def dropped_rows(dropped: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(dropped)
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="Rows dropped"),
            y=alt.Y("reason:N", sort="-x", title=None),
            color=alt.Color("table:N", title="Table"),
            tooltip=["table", "reason", "rows"],
        )
        .properties(height=max(120, 30 * len(dropped)))
    )
