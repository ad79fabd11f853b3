"""Recommendations: find a customer, see their history, what the model suggests, and similar products."""

import pandas as pd
import streamlit as st

from dagster_project import model_store
from dagster_project.contract import id_key
from dagster_project.recommender import ModelError
from dagster_project.settings import model_path
from streamlit_app import access, services, tables

st.title("Recommendations")
try:
    model = services.served_model()
except ModelError as exc:
    st.warning(str(exc), icon=":material/model_training:")
    if access.current_user().is_operator:
        st.page_link("app_pages/refresh.py", label="Train one now on the Refresh page", icon=":material/refresh:")
    st.stop()

card = model.card
for problem in services.model_problems():
    st.warning(
        f"The served model file cannot be used ({problem}) Serving the newest kept version that loads: "
        f"{card.version or '?'}.",
        icon=":material/warning:",
    )
with st.expander(
    f"Model card · version {card.version or '?'} · trained {card.trained_at} · "
    f"run {(card.run_id or '?')[:8]}" + ("" if card.measured else " · not measured")
):
    params = card.params
    st.markdown(
        f"Shrunk-SVD collaborative filtering, rank **{params.factors}**, shrinkage **{params.shrinkage}**, "
        f"**{params.weighting}** confidence, re-buy weight **{params.rebuy_weight}** "
        f"({card.selection}). Trained on {card.transactions:,} "
        f"transactions, {card.users:,} customers, {card.items:,} products. {tables.holdout_text(card)}"
    )
    for list_kind, reason in tables.not_measured(card).items():
        st.warning(
            f"{'New products' if list_kind == 'new' else 'Lists with re-buys'}: {reason}.", icon=":material/help:"
        )
    if card.metrics:
        st.dataframe(tables.metrics_frame(card), hide_index=True, width="stretch")

with st.expander("Model versions"):
    models_dir = model_path().parent
    kept = model_store.list_versions(models_dir)
    if not kept:
        st.write("No earlier versions kept yet.")
    else:
        names = [model_store.version_name(p) for p in kept]
        st.table(
            pd.DataFrame({"version": names, "serving": ["yes" if n == card.version else "" for n in names]}).set_index(
                "version"
            )
        )
        chosen = st.selectbox(
            "Version to serve",
            names,
            key="version_choice",
            disabled=not access.current_user().is_operator,
            help=None if access.current_user().is_operator else "Operators only",
        )
        if st.button(
            "Serve this version",
            key="serve_version",
            disabled=not access.current_user().is_operator
            or (chosen == card.version and not services.model_problems()),
        ):
            access.require_operator()  # checked here, whatever the page showed or disabled
            try:
                model_store.roll_back(models_dir, kept[names.index(chosen)])
                st.toast(f"Now serving {chosen}")
                st.rerun()
            except (ModelError, ValueError) as exc:
                st.error(f"Cannot serve {chosen}: {exc}")

query = st.text_input("Customer id or name", placeholder="e.g. 1001 or Garcia", key="customer_query")
n = st.slider("How many products", 5, 50, 10)
if not query.strip():
    st.info("Type a customer id or part of a name.")
    st.stop()

matches = model.find_users(query)
if matches.empty:
    st.warning(
        f"No customer with id or name '{tables.plain(query)}'. A new visitor would see the best-sellers:",
        icon=":material/person_off:",
    )
    st.dataframe(model.popular(n), hide_index=True, width="stretch")
    st.stop()
if len(matches) > 1 and matches["user_id"].iloc[0] != id_key(query):
    labels = dict(zip(matches["user_id"], matches.get("name", matches["user_id"]).astype(str)))
    user_id = st.selectbox(
        f"{len(matches)} customers match",
        list(labels),
        format_func=lambda u: f"{labels[u]} ({u})",
        key="customer_choice",
    )
else:
    user_id = matches["user_id"].iloc[0]

profile = model.profile(user_id)
history = model.purchase_history(user_id)
st.subheader(f"{tables.plain(profile.get('name') or 'Customer')} ({tables.plain(user_id)})")
cols = st.columns(4)
cols[0].metric("Products bought", len(history))
cols[1].metric("Purchases", int(history["purchases"].sum()) if len(history) else 0)
cols[2].metric("Age", profile.get("age") if profile.get("age") is not None else "–")
cols[3].metric("Country", profile.get("country") or "–")

new_tab, again_tab, history_tab = st.tabs(["New for this customer", "Buy again", "Purchase history"])
with new_tab:
    recs = model.recommend(user_id, n=n)
    if not len(history):
        st.info("This customer has not bought anything yet: showing the best-sellers.", icon=":material/person:")
    st.dataframe(
        recs, hide_index=True, width="stretch", column_config={"price": st.column_config.NumberColumn(format="%.2f")}
    )
    st.download_button(
        "Download as CSV",
        recs.to_csv(index=False).encode(),
        f"recommendations_{user_id}.csv",
        "text/csv",
        icon=":material/download:",
    )
with again_tab:
    again = model.recommend(user_id, n=n, exclude_purchased=False)
    st.caption("Their own favourites blended with new suggestions, for shops that sell what people re-order.")
    st.dataframe(again, hide_index=True, width="stretch")
with history_tab:
    st.dataframe(history, hide_index=True, width="stretch")

st.subheader("Similar products")
items = model.items
default = history["product_id"].iloc[0] if len(history) else items["product_id"].iloc[0]
names = dict(zip(items["product_id"], items["name"].astype(str)))
product = st.selectbox(
    "Product", list(names), index=list(names).index(default), format_func=lambda p: f"{names[p]} ({p})"
)
st.dataframe(model.similar_items(product, n=n), hide_index=True, width="stretch")
