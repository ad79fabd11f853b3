"""What the Model history page shows, as plain frames and sentences: kept versions, training runs over
time, a version beside the served one, and how much the lists changed.

No Streamlit import: the page draws these, the tests read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from dagster_project.model_card import ModelCard
from streamlit_app.tables import plain, when

NOT_MEASURED = "not measured"
SERIES = {  # metadata label -> line name on the chart
    "ndcg_at_10": "Model: new products",
    "popularity_ndcg_at_10": "Best-sellers",
    "rebuy_ndcg_at_10": "Model: lists with re-buys",
    "buy_again_ndcg_at_10": "Buy again (own favourites)",
}


def version_label(name: str | None) -> str:
    """A kept version's name ("20261127T114228Z-e2a4605b") as people read it: "27 Nov 2026 11:42 (e2a4605b)"."""
    if not name:
        return "unknown version"
    stamp, _, run = name.partition("-")
    try:
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return name
    return f"{moment:%d %b %Y %H:%M}" + (f" ({run[:8]})" if run else "")


def duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def trained_on(card: ModelCard) -> str:
    """The training time as a day and hour people read (UTC)."""
    try:
        moment = datetime.fromisoformat(card.trained_at.replace("Z", "+00:00"))
    except ValueError:
        return card.trained_at
    return f"{moment.astimezone(UTC):%d %b %Y %H:%M} UTC"


def versus_best_sellers(card: ModelCard | None) -> str:
    """The card's verdict on new products: better or worse than recommending the best-sellers, by how much."""
    if card is None or "new" not in card.metrics:
        return NOT_MEASURED
    model, popular = card.metrics["new"]["svd"].ndcg, card.metrics["new"]["popularity"].ndcg
    if popular <= 0:
        return "better than best-sellers" if model > 0 else "no better than best-sellers"
    change = model / popular - 1
    if abs(change) < 0.005:
        return "as good as best-sellers"
    return f"{abs(change):.0%} {'better' if change > 0 else 'worse'} than best-sellers"


def settings_text(card: ModelCard) -> str:
    p = card.params
    text = f"rank {p.factors}, shrinkage {p.shrinkage:g}, {p.weighting} weighting, re-buy weight {p.rebuy_weight:g}"
    if p.neighbour_weight:
        text += f", bought-together blend {p.neighbour_weight:g}"
    if p.popularity_exponent:
        text += f", popularity damping {p.popularity_exponent:g}"
    return text


CHOSEN, TRIED = "Served setting", "Other settings tried"


def variety_frame(card: ModelCard) -> pd.DataFrame:
    """The accuracy-variety curve the tuner explored: one row per setting tried on new products.

    `coverage` is the share of the catalogue shown across the checked customers' new-product lists,
    `ndcg` their NDCG@10 on the tuning slice; `point` says which row is the served setting.
    """
    rows = [
        {
            "coverage": t.coverage,
            "ndcg": t.ndcg,
            "point": CHOSEN if card.is_chosen(t) else TRIED,
            "Variety": f"{t.coverage:.1%}",
            "NDCG@10": f"{t.ndcg:.3f}",
            "Bought-together blend": f"{t.params.neighbour_weight:g}",
            "Setting": f"rank {t.params.factors}, shrinkage {t.params.shrinkage:g}, {t.params.weighting}",
        }
        for t in card.curve
    ]
    columns = ["coverage", "ndcg", "point", "Variety", "NDCG@10", "Bought-together blend", "Setting"]
    return pd.DataFrame(rows, columns=columns).sort_values(["coverage", "ndcg"], kind="stable", ignore_index=True)


def variety_text(card: ModelCard) -> str:
    """The verdict on variety: what was asked, what the served setting reached, and what it cost."""
    curve = card.curve
    asked = f"at least {card.min_coverage:.0%} of the catalogue" if card.min_coverage else "no minimum"
    if not curve:
        return f"Variety asked: {asked}. The settings were not tuned for this model, so no trade-off was explored."
    chosen = next((t for t in curve if card.is_chosen(t)), None)
    best = max(curve, key=lambda t: t.ndcg)
    if chosen is None:
        return f"Variety asked: {asked}. The served setting is not among the {len(curve)} settings tried."
    met = chosen.coverage >= card.min_coverage
    verdict = (
        f"**Variety {'reached' if met else 'not reached'}**: the customers' new-product lists show "
        f"{chosen.coverage:.1%} of the catalogue between them (asked: {asked})"
    )
    if best.ndcg <= chosen.ndcg:
        cost = "at no cost in accuracy: it is also the most accurate setting tried"
    else:
        cost = (
            f"for {1 - chosen.ndcg / best.ndcg:.0%} less accuracy than the most accurate setting tried "
            f"(NDCG@10 {chosen.ndcg:.3f} against {best.ndcg:.3f}, which showed {best.coverage:.1%})"
        )
    tail = "" if met else "; no setting tried reached it, so the one with the most variety is served"
    return f"{verdict}, {cost}{tail}."


def versions_frame(kept: Sequence) -> pd.DataFrame:
    """Kept model files, newest first: which is served, what each knows and how good it was."""
    rows = []
    for version in kept:
        card = version.card
        rows.append(
            {
                "version": version.name,
                "serving": "serving now" if version.served else "",
                "trained": trained_on(card) if card else "–",
                "quality": versus_best_sellers(card) if card else f"cannot be used: {version.problem}",
                "customers": card.users if card else None,
                "products": card.items if card else None,
                "transactions": card.transactions if card else None,
                "training time": duration(card.train_seconds) if card else "–",
                "settings": settings_text(card) if card else "–",
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "trained",
            "serving",
            "quality",
            "customers",
            "products",
            "transactions",
            "training time",
            "settings",
            "version",
        ],
    )
    for column in ("customers", "products", "transactions"):
        frame[column] = frame[column].map(lambda v: "–" if v is None or pd.isna(v) else f"{int(v):,}")
    return frame


def runs_frame(materializations: list[dict]) -> pd.DataFrame:
    """One row per training run (the model's materializations in Dagster), oldest first."""
    rows = []
    for m in materializations:
        meta = m["metadata"]
        rows.append(
            {
                "time": when(m["timestamp"]),
                "version": meta.get("version"),
                "run_id": m["run_id"],
                **{label: meta.get(label) for label in SERIES},
                "coverage": meta.get("coverage"),
                "train_seconds": meta.get("train_seconds"),
                "customers": meta.get("users"),
                "products": meta.get("items"),
                "size_bytes": meta.get("size_bytes"),
                "factors": meta.get("factors"),
                "weighting": meta.get("weighting"),
            }
        )
    columns = ["time", "version", "run_id", *SERIES, "coverage", "train_seconds", "customers", "products"]
    columns += ["size_bytes", "factors", "weighting"]
    return pd.DataFrame(rows, columns=columns).sort_values("time", kind="stable").reset_index(drop=True)


def quality_long(runs: pd.DataFrame) -> pd.DataFrame:
    """NDCG@10 of the model and of the baselines per run, one row per (run, line), for the chart."""
    long = runs.melt(id_vars=["time", "version", "run_id"], value_vars=list(SERIES), var_name="label")
    long = long.dropna(subset=["value"])
    long["line"] = long["label"].map(SERIES)
    return long.rename(columns={"value": "ndcg"})[["time", "version", "run_id", "line", "ndcg"]]


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The training runs as people read them: newest first, words and formatted figures."""

    def share(v: object) -> str:
        return "–" if v is None or pd.isna(v) else f"{float(v):.0%}"

    def figure(v: object) -> str:
        return NOT_MEASURED if v is None or pd.isna(v) else f"{float(v):.3f}"

    def count(v: object) -> str:
        return "–" if v is None or pd.isna(v) else f"{int(v):,}"

    table = pd.DataFrame(
        {
            "trained": runs["time"].dt.strftime("%d %b %Y %H:%M"),
            "version": runs["version"].fillna("–"),
            "model (NDCG@10)": runs["ndcg_at_10"].map(figure),
            "best-sellers (NDCG@10)": runs["popularity_ndcg_at_10"].map(figure),
            "catalogue coverage": runs["coverage"].map(share),
            "training time": runs["train_seconds"].map(duration),
            "customers": runs["customers"].map(count),
            "products": runs["products"].map(count),
            "model file": runs["size_bytes"].map(lambda v: "–" if v is None or pd.isna(v) else f"{v / 1e6:.1f} MB"),
            "settings": [
                "–" if pd.isna(f) else f"rank {int(f)}, {w} weighting"
                for f, w in zip(runs["factors"], runs["weighting"].fillna("?"))
            ],
            "run": runs["run_id"].str[:8],
        }
    )
    return table.iloc[::-1].reset_index(drop=True)


def compare_frame(served: ModelCard, served_name: str, chosen: ModelCard, chosen_name: str) -> pd.DataFrame:
    """A version's figures beside the served one's, row by row."""

    def figures(card: ModelCard) -> list[str]:
        new = card.metrics.get("new", {})
        return [
            trained_on(card),
            versus_best_sellers(card),
            f"{new['svd'].ndcg:.3f}" if new else NOT_MEASURED,
            f"{new['svd'].coverage:.0%}" if new else NOT_MEASURED,
            f"{card.users:,}",
            f"{card.items:,}",
            f"{card.transactions:,}",
            settings_text(card),
        ]

    labels = [
        "trained",
        "quality",
        "NDCG@10 (new products)",
        "coverage on held-out customers",
        "customers",
        "products",
        "transactions",
        "settings",
    ]
    return pd.DataFrame(
        {
            "": labels,
            f"served now: {version_label(served_name)}": figures(served),
            f"chosen: {version_label(chosen_name)}": figures(chosen),
        }
    )


def change_text(change, served: str, previous: str) -> str:
    """How much the served model's lists differ from the version before, in one sentence."""
    if not change.customers_compared:
        return (
            f"No customer is known to both this version and the one of {version_label(previous)}, so their lists "
            "cannot be compared."
        )
    if not change.changed:
        return (
            f"**The same lists**: for all {change.customers_compared:,} customers compared, the top-10 is what the "
            f"version of {version_label(previous)} recommended."
        )
    return (
        f"For **{change.changed:,} of {change.customers_compared:,}** customers compared, the top-10 changed from the "
        f"version of {version_label(previous)} to this one; on average **{change.mean_overlap * 10:.1f} of 10** "
        "products stayed the same."
    )


def missing_warnings(change, chosen: str) -> list[str]:
    """What a roll-back would lose: customers or products the served model knows and the version does not."""
    out = []
    if change.missing_customers:
        out.append(
            f"The version of {version_label(chosen)} does not know {change.missing_customers:,} customers that the "
            "served model knows: they "
            "would get the best-sellers instead of their own lists."
        )
    if change.missing_products:
        out.append(
            f"The version of {version_label(chosen)} does not know {change.missing_products:,} products that the "
            "served model knows: they "
            "would never be recommended."
        )
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a markdown table: its cells wrap on a phone instead of scrolling sideways."""
    lines = ["| " + " | ".join(plain(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(plain(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
