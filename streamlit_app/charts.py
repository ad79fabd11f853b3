"""Altair charts for the pages, built from plain DataFrames (so tests can read their data)."""

from __future__ import annotations

import altair as alt
import pandas as pd

TIME_AXIS = alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6)
STATUS_COLORS = alt.Scale(
    domain=["Succeeded", "Failed", "Stopped", "Under way", "Waiting to start", "Skipped (an earlier step failed)"],
    range=["#2e7d32", "#c62828", "#757575", "#1565c0", "#f9a825", "#9e9e9e"],
)


def _time_axis(times: pd.Series) -> alt.Axis:
    """Ticks that differ from each other: with seconds when every run fell within the same hour."""
    span = (times.max() - times.min()) if len(times) else pd.Timedelta(0)
    return alt.Axis(format="%H:%M:%S" if span < pd.Timedelta(hours=1) else "%d %b %H:%M", labelAngle=0, tickCount=6)


def run_durations(runs: pd.DataFrame) -> alt.Chart:
    """How long each finished run took, over time: one colour per kind of refresh, one shape per result."""
    data = runs.dropna(subset=["seconds"])[["start", "seconds", "What ran", "Result", "Took", "Run"]]
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=60, filled=True))
        .encode(
            x=alt.X("start:T", title="Started (UTC)", axis=_time_axis(data["start"])),
            y=alt.Y("seconds:Q", title="Took (seconds)"),
            color=alt.Color("What ran:N", title="What ran", legend=alt.Legend(orient="bottom", direction="vertical")),
            shape=alt.Shape("Result:N", title="Result", legend=alt.Legend(orient="bottom")),
            tooltip=["What ran", "Result", "Took", "Run"],
        )
        .properties(height=280)
    )


def step_durations(steps: pd.DataFrame) -> alt.Chart:
    """How long each step of one run took, in the run's order."""
    return (
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("seconds:Q", title="Took (seconds)"),
            y=alt.Y("Step:N", sort=None, title=None, axis=alt.Axis(labelLimit=200, labelOverlap=False)),
            color=alt.Color("Result:N", scale=STATUS_COLORS, legend=None),  # the table beside it names the result
            tooltip=["Step", "Result", "Took"],
        )
        .properties(height=32 * len(steps) + 50)
    )


def quality_over_time(scores: pd.DataFrame, threshold: float | None = None) -> alt.Chart | alt.LayerChart:
    base = (
        alt.Chart(scores)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title="Validated", axis=TIME_AXIS),
            y=alt.Y("quality_score:Q", title="Data quality (%)", scale=alt.Scale(domain=[0, 100])),
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


def _room_for_labels(values: pd.Series) -> alt.Scale:
    """An x scale with a fifth more room than the longest bar, so the count written after it is never cut off."""
    return alt.Scale(domain=[0, max(1.0, float(values.max()) * 1.2)], nice=False)


def records_per_stage(counts: pd.DataFrame) -> alt.LayerChart:
    """Records of each table at each stage, as labelled horizontal bars (every bar named, readable at any width)."""
    data = counts.assign(
        Data=counts["table"].map({"users": "Customers", "products": "Products", "transactions": "Purchases"}),
        Stage=counts["stage"].map({"raw": "read", "prepared": "prepared", "features": "used for training"}),
    )
    pairs = (data["table"] == "transactions") & (data["stage"] == "features")
    data = data.assign(Stage=data["Stage"].mask(pairs, "customer-product pairs for training"))
    data = data.assign(Bar=data["Data"] + ": " + data["Stage"])
    base = alt.Chart(data).encode(
        y=alt.Y("Bar:N", title=None, sort=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
        x=alt.X("records:Q", title="Records", axis=alt.Axis(format=",d"), scale=_room_for_labels(data["records"])),
        tooltip=["Data", "Stage", alt.Tooltip("records:Q", format=",d")],
    )
    bars = base.mark_bar().encode(color=alt.Color("Data:N", title="Data", legend=None))
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("records:Q", format=",d"))
    return (bars + labels).properties(height=30 * len(data) + 20)


def dropped_rows(dropped: pd.DataFrame) -> alt.LayerChart:
    """Rows left out in preparation, one labelled bar per reason (every bar named and counted)."""
    base = alt.Chart(dropped).encode(
        x=alt.X(
            "rows:Q",
            title="Rows left out",
            axis=alt.Axis(format=",d", tickMinStep=1),
            scale=_room_for_labels(dropped["rows"]),
        ),
        y=alt.Y("Reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=200, labelOverlap=False)),
        tooltip=["Data", "Reason", alt.Tooltip("rows:Q", format=",d")],
    )
    bars = base.mark_bar().encode(color=alt.Color("Data:N", legend=None))  # the table below names the data
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("rows:Q", format=",d"))
    return (bars + labels).properties(height=34 * len(dropped) + 50)


def model_quality_over_time(quality: pd.DataFrame) -> alt.Chart:
    """NDCG@10 per training run: the model against the best-sellers and the customer's own favourites."""
    return (
        alt.Chart(quality)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title="Trained", axis=TIME_AXIS),
            y=alt.Y("ndcg:Q", title="NDCG@10"),
            color=alt.Color("line:N", title=None, legend=alt.Legend(orient="bottom", columns=2)),
            tooltip=["line", "version", alt.Tooltip("ndcg:Q", title="NDCG@10", format=".3f"), "time:T"],
        )
        .properties(height=320)
    )


def accuracy_variety(curve: pd.DataFrame, floor: float) -> alt.LayerChart:
    """NDCG@10 against catalogue coverage of every setting tried: the served one marked, the variety asked a rule."""
    base = alt.Chart(curve).encode(
        x=alt.X("coverage:Q", title="Variety: share of the catalogue shown", axis=alt.Axis(format="%")),
        y=alt.Y("ndcg:Q", title="Accuracy (NDCG@10)"),
        tooltip=["point", "Variety", "NDCG@10", "Bought-together blend", "Setting"],
    )
    points = base.mark_point(filled=True, opacity=0.8).encode(
        color=alt.Color(
            "point:N",
            title=None,
            scale=alt.Scale(domain=["Served setting", "Other settings tried"], range=["#c62828", "#90a4ae"]),
            legend=alt.Legend(orient="bottom"),
        ),
        size=alt.Size(
            "point:N", scale=alt.Scale(domain=["Served setting", "Other settings tried"], range=[220, 50]), legend=None
        ),
        shape=alt.Shape(
            "point:N",
            scale=alt.Scale(domain=["Served setting", "Other settings tried"], range=["diamond", "circle"]),
            legend=None,
        ),
    )
    rule = alt.Chart(pd.DataFrame({"coverage": [floor], "label": [f"asked: {floor:.0%}"]}))
    asked = rule.mark_rule(strokeDash=[4, 4], color="#555").encode(x="coverage:Q", tooltip=["label"])
    words = rule.mark_text(align="left", dx=4, baseline="top", color="#555").encode(
        x="coverage:Q", y=alt.value(2), text="label"
    )
    return (points + asked + words).properties(height=300)


def top_products(top: pd.DataFrame, label: str = "name", count: str = "customers") -> alt.Chart:
    """The products in the most customers' lists."""
    return (
        alt.Chart(top)
        .mark_bar()
        .encode(
            x=alt.X(f"{count}:Q", title="Customers with it in their list"),
            y=alt.Y(f"{label}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160, labelOverlap=False)),
            tooltip=[label, alt.Tooltip(f"{count}:Q", format=",")],
        )
        .properties(height=max(120, 30 * len(top)))
    )
