"""Driving the app in-process with Streamlit's AppTest: open a page, read its words and its charts.

Plain helpers (no fixtures): the page tests share them so each reads the app the same way.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.workspace import APP

TEXT_KINDS = ("markdown", "success", "info", "warning", "error", "caption", "title", "subheader")


def open_page(page: str | None = None, secrets: dict | None = None, fresh: bool = False) -> AppTest:
    """The app as a browser session opens it, switched to `app_pages/<page>.py` (the Overview when None).

    `secrets` are the `[users]` of a signed-in app; `fresh` drops Dagster's answers cached for 5 s, to
    read what a run just wrote.
    """
    if fresh:
        st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=60)
    if secrets:
        at.secrets["users"] = secrets
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every sentence a user reads on the page: text elements, banners and progress bars' words."""
    parts = [str(e.value) for kind in TEXT_KINDS for e in at.get(kind) if hasattr(e, "value")]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(parts)


def chart_data(at: AppTest, index: int = 0) -> tuple[dict, pd.DataFrame]:
    """A chart's Vega-Lite spec and the data it draws."""
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    chart = charts[index]
    spec = json.loads(chart.proto.spec)
    data = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    return spec, data
