"""Recommendations: find a customer in the list (or by id, name or e-mail), see what the model suggests
and why, and what it recommends across all customers."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from dagster_project.contract import id_key
from dagster_project.recommender import ModelError, RecommenderModel
from streamlit_app import access, all_customers, customer_tables, model_versions, services, tables

st.title("Recommendations")
try:
    model = services.served_model()
except ModelError as exc:
    st.warning(str(exc), icon=":material/model_training:")
    if access.current_user().is_operator:
        st.page_link("app_pages/refresh.py", label="Train one now on the Refresh page", icon=":material/refresh:")
    else:
        st.caption("An operator can train one on the Refresh page.")
    st.stop()

card = model.card
for problem in services.model_problems():
    st.warning(
        f"The served model file cannot be used ({problem}) Serving the newest kept version that loads: "
        f"{card.version or '?'}.",
        icon=":material/warning:",
    )
updated = f" · brought up to date {card.update.updated_at[:16].replace('T', ' ')} UTC" if card.update else ""
with st.expander(
    f"Model card · trained {model_versions.trained_on(card)}{updated} · {model_versions.versus_best_sellers(card)}"
):
    params = card.params
    st.markdown(
        f"Shrunk-SVD collaborative filtering, rank **{params.factors}**, shrinkage **{params.shrinkage}**, "
        f"**{params.weighting}** confidence, re-buy weight **{params.rebuy_weight}** "
        f"({card.selection}). Trained on {card.transactions:,} "
        f"transactions, {card.users:,} customers, {card.items:,} products. {tables.holdout_text(card)}"
    )
    if card.update is not None:
        st.markdown(tables.update_text(card))
    for list_kind, reason in tables.not_measured(card).items():
        st.warning(
            f"{'New products' if list_kind == 'new' else 'Lists with re-buys'}: {reason}.", icon=":material/help:"
        )
    if card.metrics:
        st.dataframe(tables.metrics_frame(card), hide_index=True, width="stretch")
st.page_link(
    "app_pages/model_history.py",
    label="Model history: earlier versions, going back to one",
    icon=":material/history:",
)


@st.cache_data(max_entries=2, show_spinner=False)
def _customers(_model: RecommenderModel, identity: str) -> pd.DataFrame:
    """Every customer with their purchases and spend, once per served model (`identity` names it)."""
    return _model.customers()


def model_identity(model: RecommenderModel) -> str:
    return f"{model.card.version}|{model.card.trained_at}|{model.card.run_id}|{model.n_users}"


def show_list(recs: pd.DataFrame, customer: dict, list_name: str, key: str) -> None:
    """A list: product and why first (wraps on a phone), every column on demand, and its CSV."""
    st.markdown(customer_tables.list_markdown(recs))
    with st.expander("All columns"):
        st.dataframe(
            customer_tables.details_frame(recs),
            hide_index=True,
            width="stretch",
            column_config={
                "score": st.column_config.NumberColumn(
                    "model score",
                    format="%.4f",
                    help="How strongly the model ranks the product for this customer; only the order counts.",
                ),
            },
        )
    st.download_button(
        "Download as CSV",
        customer_tables.customer_download(customer, recs, list_name),
        f"recommendations_{customer['user_id']}_{key}.csv",
        "text/csv",
        icon=":material/download:",
        key=f"download_{key}",
        help="With the customer's id, name and e-mail on every row, and why each product is suggested.",
    )


def show_customer(model: RecommenderModel, customer: dict, n: int) -> None:
    user_id = customer["user_id"]
    history = model.purchase_history(user_id)
    st.subheader(f"{tables.plain(customer.get('name') or 'Customer')} ({tables.plain(user_id)})")
    st.caption(customer_tables.profile_line(customer))
    cols = st.columns(3)
    cols[0].metric("Products bought", f"{len(history):,}")
    cols[1].metric("Purchases", f"{int(history['purchases'].sum()) if len(history) else 0:,}")
    cols[2].metric("Spent", f"{float(customer.get('spend') or 0):,.2f}")

    new_tab, again_tab, history_tab = st.tabs(["New for this customer", "Buy again", "Purchase history"])
    with new_tab:
        if not len(history):
            st.info("This customer has not bought anything yet: showing the best-sellers.", icon=":material/person:")
        show_list(model.recommend(user_id, n=n), customer, "new products", "new")
    with again_tab:
        st.caption("Their own favourites blended with new suggestions, for shops that sell what people re-order.")
        show_list(model.recommend(user_id, n=n, exclude_purchased=False), customer, "buy again", "again")
    with history_tab:
        if len(history):
            st.dataframe(customer_tables.readable(history), hide_index=True, width="stretch")
        else:
            st.write("No purchases yet.")

    st.subheader("Similar products")
    items = model.items
    default = history["product_id"].iloc[0] if len(history) else items["product_id"].iloc[0]
    names = dict(zip(items["product_id"], items["name"].astype(str)))
    product = st.selectbox(
        "Product",
        list(names),
        index=list(names).index(default),
        format_func=lambda p: f"{names[p]} ({p})",
    )  # no key: another customer starts from their own most-bought product
    st.markdown(customer_tables.list_markdown(model.similar_items(product, n=n)))


def find_customer(model: RecommenderModel) -> None:
    """The customer list, narrowed by a search; a picked row (or an exact id) opens that customer."""
    customers = _customers(model, model_identity(model))
    search, order = st.columns([3, 1], vertical_alignment="bottom")
    query = search.text_input(
        "Find a customer by id, name or e-mail",
        placeholder="e.g. 1001, Garcia or @example.com",
        key="customer_query",
    )
    text = query.strip()
    sorts = ([customer_tables.BEST_MATCH] if text else []) + list(customer_tables.SORTS)
    sort = order.selectbox("Order", sorts, key="customer_order")
    n = st.slider("How many products per list", 5, 50, 10, key="list_length")

    if text:
        found, total = model.search_users(text, customer_tables.LIST_LIMIT)
    else:
        found, total = customers, len(customers)
    if total == 0:
        st.warning(
            f"No customer with id, name or e-mail '{tables.plain(text)}'. Check the spelling or search for part "
            "of the name. A new visitor would see the best-sellers:",
            icon=":material/person_off:",
        )
        st.markdown(customer_tables.list_markdown(model.popular(n)))
        return
    shown = customer_tables.sort_customers(found, sort).head(customer_tables.LIST_LIMIT).reset_index(drop=True)
    st.caption(customer_tables.count_text(len(shown), total, text))
    digest = hashlib.sha1(f"{text}|{sort}|{model_identity(model)}".encode()).hexdigest()[:10]
    picked = st.dataframe(
        customer_tables.customer_table(shown),
        key=f"customer_list_{digest}",  # a new search starts with nothing picked
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(shown), 320),
        column_config={
            "user_id": st.column_config.TextColumn("customer id"),
            "email": st.column_config.TextColumn("e-mail"),
            "purchases": st.column_config.NumberColumn("purchases", format="%d"),
            "spend": st.column_config.NumberColumn("spent", format="%.2f"),
            "last_purchase": st.column_config.TextColumn("last purchase"),
        },
    )
    rows = picked.selection.rows
    exact = shown[shown["user_id"] == id_key(text)] if text else shown.iloc[:0]
    if rows and rows[0] < len(shown):
        chosen = shown.iloc[rows[0]]
    elif len(exact):  # a typed id opens that customer at once
        chosen = exact.iloc[0]
    elif text and total == 1:
        chosen = shown.iloc[0]
    else:
        st.info(
            "Pick a customer: click the box at the start of their row to see their recommendations.",
            icon=":material/touch_app:",
        )
        return
    show_customer(model, {k: (None if pd.isna(v) else v) for k, v in chosen.items()}, n)


customers_tab, summary_tab = st.tabs(["Customers", "Across all customers"])
with customers_tab:
    find_customer(model)
with summary_tab:
    all_customers.show_summary(card)
