"""RecoMart: the self-service app over the Dagster pipeline (`streamlit run streamlit_app/app.py`)."""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="RecoMart", page_icon=":material/storefront:", layout="wide")

PAGES = Path(__file__).resolve().parent / "app_pages"
st.navigation([
    st.Page(PAGES / "overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page(PAGES / "refresh.py", title="Refresh", icon=":material/refresh:"),
    st.Page(PAGES / "runs.py", title="Runs", icon=":material/history:"),
    st.Page(PAGES / "data_quality.py", title="Data quality", icon=":material/fact_check:"),
    st.Page(PAGES / "recommendations.py", title="Recommendations", icon=":material/recommend:"),
]).run()
