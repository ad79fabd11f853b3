"""RecoMart: the self-service app over the Dagster pipeline (`streamlit run streamlit_app/app.py`)."""

from pathlib import Path

import streamlit as st

from streamlit_app import access

st.set_page_config(page_title="RecoMart", page_icon=":material/storefront:", layout="wide")

user = access.signed_in_user()
access.sidebar(user)
PAGES = Path(__file__).resolve().parent / "app_pages"
pages = [st.Page(PAGES / "overview.py", title="Overview", icon=":material/home:", default=True)]
if user.is_operator:
    pages.append(st.Page(PAGES / "refresh.py", title="Refresh", icon=":material/refresh:"))
pages += [
    st.Page(PAGES / "runs.py", title="Runs", icon=":material/history:"),
    st.Page(PAGES / "automation.py", title="Automation", icon=":material/schedule:"),
    st.Page(PAGES / "data_quality.py", title="Data quality", icon=":material/fact_check:"),
    st.Page(PAGES / "recommendations.py", title="Recommendations", icon=":material/recommend:"),
    st.Page(PAGES / "model_history.py", title="Model history", icon=":material/model_training:"),
]
st.navigation(pages).run()
