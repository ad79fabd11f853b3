"""The Recommendations page's summary of every customer's lists (the pipeline's `user_recommendations`
output): what the model recommends across the shop, and the whole set as a download.

Read from the files under the storage folder, so it works while Dagster is down.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dagster_project import customer_lists, fileio
from dagster_project.model_card import ModelCard
from dagster_project.settings import folder
from streamlit_app import access, charts, model_versions


def _stamp(path: Path) -> str:
    """Changes whenever the dataset is rewritten (a file, or a folder of parts: the lists' base and layer)."""
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    parts = []
    for file in files:
        if file.name.startswith(fileio.TEMP_PREFIX):  # a write in progress changes nothing
            continue
        try:
            stat = file.stat()
        except FileNotFoundError:  # removed since the folder was listed (a full write drops the layer)
            continue
        if not file.is_dir():
            parts.append(f"{file.name}:{stat.st_mtime_ns}:{stat.st_size}")
    return "|".join(parts)


def _made_by_other_model(storage: Path, card: ModelCard) -> dict | None:
    """The stored lists' lineage when they come from another model than the one served (after a roll-back, until
    the next refresh makes them again), else None."""
    stored = customer_lists.stored_lineage(storage)
    if not stored or (stored.get("version"), stored.get("updates")) == (card.version, card.updates):
        return None
    return stored


@st.cache_data(max_entries=2, show_spinner="Reading every customer's list...")
def _summary(storage_dir: str, stamp: str) -> dict:
    return customer_lists.summary(Path(storage_dir))


def _csv(storage_dir: Path) -> bytes:
    """Made when the button is clicked (never kept: on a large shop it is hundreds of MB)."""
    return customer_lists.to_csv_bytes(customer_lists.read(storage_dir))


def _parquet(storage_dir: Path) -> bytes:
    """One Parquet file of every customer's lists, with the catalogue they were made from: the stored file itself,
    or after a nightly update the stored file and its changes composed at the click (never kept)."""
    return customer_lists.parquet_bytes(storage_dir)


def _share(value: float) -> str:
    return f"{value:.0%}" if value >= 0.01 or value == 0 else "under 1%"


def show_summary(card: ModelCard) -> None:
    """The summary of the stored lists and their downloads; says so when they are another model's than `card`'s."""
    storage = folder("storage")
    path = customer_lists.dataset_path(storage)
    if not path.exists():
        st.info(
            "The lists for all customers have not been made yet. Every complete refresh makes them (with the "
            "model), so they appear here after the next one.",
            icon=":material/hourglass_empty:",
        )
        if access.current_user().is_operator:
            st.page_link("app_pages/refresh.py", label="Start a complete refresh", icon=":material/refresh:")
        else:
            st.caption("Ask an operator to run a complete refresh.")
        return
    stamp = _stamp(customer_lists.folder_path(storage))
    other = _made_by_other_model(storage, card)
    if other is not None:
        made_by, serving = (model_versions.version_label(v) for v in (other.get("version"), card.version))
        st.warning(
            "**These lists are from another model than the one served now** (made by the version of "
            f"{made_by}; serving {serving}, put back on the Model history page). The Customers tab already uses the "
            "served model; the figures and downloads below are made again from it by the next refresh.",
            icon=":material/history:",
        )
        if access.current_user().is_operator:
            st.page_link("app_pages/refresh.py", label="Start a refresh now", icon=":material/refresh:")
    try:
        summary = _summary(str(storage), stamp)
    except customer_lists.DamagedLists as exc:
        st.error(
            "**The lists for all customers cannot be read** (a stored file is damaged). The Customers tab still "
            "works from the model. A refresh of everything writes every customer's lists again.",
            icon=":material/error:",
        )
        with st.expander("Details for the engineer"):
            st.markdown(str(exc))
        if access.current_user().is_operator:
            st.page_link("app_pages/refresh.py", label="Start a refresh of everything", icon=":material/refresh:")
        else:
            st.caption("Ask an operator to run a refresh of everything.")
        return
    customers, coverage, fallback = summary["customers"], summary["coverage"], summary["fallback_share"]
    st.markdown(
        f"**Every one of the {customers:,} customers has a list.** {_share(coverage)} of the catalogue is "
        f"recommended to someone; {_share(fallback)} of the customers get the best-sellers because they have "
        "not bought anything yet."
    )
    cols = st.columns(3)
    cols[0].metric("Customers with a list", f"{customers:,}", help=f"{summary['rows']:,} rows: one per list and rank")
    cols[1].metric(
        "Catalogue recommended",
        _share(coverage),
        help="Catalogue coverage: the share of all products that appear in at least one customer's list "
        f"(re-buys included); among products customers have not bought yet: {_share(summary['new_coverage'])}.",
    )
    cols[2].metric(
        "Best-sellers instead",
        _share(fallback),
        help="Share of customers served by the best-seller fallback (no purchases to learn from).",
    )
    top = summary["top_products"]
    if isinstance(top, pd.DataFrame) and len(top):
        st.markdown("**Most recommended products**")
        st.altair_chart(charts.top_products(top), width="stretch")
    by_category = summary["coverage_by_category"]
    if isinstance(by_category, pd.DataFrame) and len(by_category):
        st.markdown("**Coverage by category**")
        st.dataframe(
            by_category,
            hide_index=True,
            width="stretch",
            column_order=["category", "share", "products_recommended", "products_in_catalogue"],
            column_config={
                "share": st.column_config.ProgressColumn(
                    "recommended",
                    format="percent",
                    min_value=0.0,
                    max_value=1.0,
                    help="Share of the category's products that appear in at least one customer's list",
                ),
                "products_recommended": st.column_config.NumberColumn("products in lists"),
                "products_in_catalogue": st.column_config.NumberColumn("in the catalogue"),
            },
        )

    st.caption("Download every customer's lists (one row per customer, list and rank), for a campaign or the shop.")
    left, right = st.columns(2)
    left.download_button(
        "All lists as CSV",
        lambda: _csv(storage),
        "recommendations_all_customers.csv",
        "text/csv",
        icon=":material/download:",
        key="download_all_csv",
    )
    right.download_button(
        "All lists as Parquet",
        lambda: _parquet(storage),
        "recommendations_all_customers.parquet",
        "application/vnd.apache.parquet",
        icon=":material/download:",
        key="download_all_parquet",
        help="For pandas: pd.read_parquet('recommendations_all_customers.parquet')",
    )
