"""Model history: every kept model version and every training run, how much the customers' lists changed,
and going back to an earlier version (operators, after a confirm step that shows what would be lost)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dagster_project import model_history, model_store
from dagster_project.recommender import ModelError, RecommenderModel, load_model
from dagster_project.settings import MODEL_FILENAME, model_path
from streamlit_app import access, charts, model_versions, services
from streamlit_app.dagster_api import DagsterError
from streamlit_app.settings import current_connection

MODEL_ASSET = "collaborative_filtering_model"

st.title("Model history")
models_dir = model_path().parent
try:
    served = services.served_model()
except ModelError as exc:
    st.warning(f"No model can be served yet. {exc}", icon=":material/model_training:")
    if access.current_user().is_operator:
        st.page_link("app_pages/refresh.py", label="Train one on the Refresh page", icon=":material/refresh:")
    st.stop()


@st.cache_resource(max_entries=3, show_spinner="Loading a kept version...")
def _version_model(path: str, mtime_ns: int) -> RecommenderModel:
    return load_model(path)


@st.cache_data(max_entries=8, show_spinner="Comparing the customers' lists...")
def _list_change(_served: RecommenderModel, served_identity: str, path: str, mtime_ns: int):
    return model_history.list_change(_served, _version_model(path, mtime_ns))


def list_change(other: Path):
    card = served.card
    identity = f"{card.version}|{card.trained_at}|{card.run_id}"
    return _list_change(served, identity, str(other), other.stat().st_mtime_ns)


@st.cache_data(max_entries=4, show_spinner="Reading the kept versions...")
def _kept(folder: str, stamp: str) -> list:
    return model_history.kept_cards(Path(folder))


def kept_versions(folder: Path) -> list:
    """The kept versions' cards, read again only when a file in the models folder changes."""
    stamps = []
    for path in [folder / MODEL_FILENAME, *model_store.list_versions(folder)]:
        try:
            stat = path.stat()
        except FileNotFoundError:  # pruned by a refresh finishing now
            continue
        stamps.append(f"{path.name}:{stat.st_mtime_ns}:{stat.st_size}")
    return _kept(str(folder), "|".join(stamps))


card = served.card
kept = kept_versions(models_dir)
usable = [v for v in kept if v.card is not None]
newest = usable[0].name if usable else None
problems = services.model_problems()
label = model_versions.version_label
verdict = f"The model trained {model_versions.trained_on(card)} is served: {model_versions.versus_best_sellers(card)}."
if problems:
    st.warning(
        f"**The served model file cannot be used**, so the newest kept version that loads is served. {verdict} "
        "Go back to a version below, or run a complete refresh.",
        icon=":material/warning:",
    )
elif newest and card.version != newest:
    st.warning(
        f"**Rolled back.** {verdict} A newer version ({label(newest)}) is kept; the next refresh trains and serves "
        "a new model again.",
        icon=":material/history:",
    )
else:
    st.success(f"**Serving the newest model.** {verdict}", icon=":material/check_circle:")

st.subheader("Kept versions")
st.caption(
    f"The last {model_store.KEEP_VERSIONS} trained models are kept as files, so the shop can go back to one. "
    "Quality compares each model's lists with recommending the best-sellers to everyone, on purchases "
    "held out from training."
)
if kept:
    st.dataframe(model_versions.versions_frame(kept), hide_index=True, width="stretch")
else:
    st.write("No versions kept yet: each complete refresh keeps one.")

position = next((i for i, v in enumerate(usable) if v.name == card.version), None)
previous = usable[position + 1] if position is not None and position + 1 < len(usable) else None
st.subheader("Accuracy and variety")
st.markdown(model_versions.variety_text(card))
curve = model_versions.variety_frame(card)
if len(curve):
    st.altair_chart(charts.accuracy_variety(curve, card.min_coverage), width="stretch")
    st.caption(
        "Each point is a setting tried while tuning, checked on up to 2,000 customers' purchases just before the "
        "test period: further right, their new-product lists show more different products between them; higher, "
        "they hold more of what customers bought next. Across all customers the lists show more of the catalogue "
        "(the model card's figure). Ask for more variety with the Variety setting on the Refresh page.",
        help="Variety is catalogue coverage: the share of all products that appear in at least one customer's "
        "top-10. NDCG@10 scores how high the products bought next sit in the top-10 (1 is perfect).",
    )

st.subheader("What changed with this version")
if previous is None:
    st.write("No earlier version is kept to compare with.")
else:
    change = list_change(previous.path)
    st.markdown(model_versions.change_text(change, card.version or "the served version", previous.name))
    st.caption(
        "Compared on a sample of customers both versions know: a top-10 changed when any product in it changed; "
        "overlap is how many of the 10 products the two lists share."
    )

st.subheader("Training runs")
try:
    runs = model_versions.runs_frame(services.materializations(current_connection(), MODEL_ASSET, 50))
except DagsterError:
    st.info(
        "The training runs come from Dagster, which cannot be reached right now: only the kept model files "
        "are shown above. The runs appear again when Dagster is back (see the Overview).",
        icon=":material/cloud_off:",
    )
else:
    if runs.empty:
        st.write("Dagster has no training run recorded yet.")
    else:
        quality = model_versions.quality_long(runs)
        if len(quality):
            st.altair_chart(charts.model_quality_over_time(quality), width="stretch")
            st.caption(
                "NDCG@10 measures how high the products customers really bought next sit in their top-10 "
                "(1 is perfect). The model should stay above the best-sellers line."
            )
        st.dataframe(model_versions.runs_table(runs), hide_index=True, width="stretch")

st.subheader("Go back to an earlier version")
user = access.current_user()
if not usable:
    st.write("No kept version to go back to.")
    st.stop()
labels = {v.name: label(v.name) + (" · serving now" if v.served else "") for v in usable}
chosen = st.selectbox(
    "Version",
    list(labels),
    index=None,
    format_func=labels.get,
    placeholder="Choose a version to compare with the served one",
    key="version_choice",
)
if not user.is_operator:
    st.caption("Viewers can compare versions; an operator confirms a switch.")
if chosen is None:
    st.stop()

version = next(v for v in usable if v.name == chosen)
same = chosen == card.version and not problems
with st.container(border=True, key="rollback_panel"):
    if same:
        st.info("This version is served now: nothing to switch.", icon=":material/check:")
    else:
        st.markdown(f"**Serve the version of {label(chosen)} instead of the one of {label(card.version)}?**")
    if not same:
        for warning in model_versions.missing_warnings(list_change(version.path), chosen):
            st.warning(warning, icon=":material/person_off:")
    st.markdown(
        model_versions.markdown_table(model_versions.compare_frame(card, card.version or "?", version.card, chosen))
    )
    confirm = st.button(
        f"Confirm: serve the version of {label(chosen)}",
        key="serve_version",
        type="primary",
        disabled=not user.is_operator or same,
        help=None if user.is_operator else "Operators only",
    )
    if confirm:
        access.require_operator()  # checked here, whatever the page showed or disabled
        try:
            model_store.roll_back(models_dir, version.path)
        except (ModelError, ValueError) as exc:
            st.error(f"Cannot serve the version of {label(chosen)}: {exc}")
        except OSError:  # the kept versions changed under it (a refresh publishing a model drops the oldest)
            st.error(
                f"Cannot serve the version of {label(chosen)}: the kept versions changed while it was being put back "
                "(a refresh may have just published a model). The served model is as it was; look at the list above "
                "and try again."
            )
        else:
            st.session_state.pop("version_choice", None)
            st.toast(f"Now serving the version of {label(chosen)}")
            st.rerun()
