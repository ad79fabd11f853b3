"""The Overview's verdict: what is served, how the last refresh went, how fresh the data is, in plain words.

Pure logic over facts the page gathers (the served model's card, the kept versions, the last run, the
latest raw materializations, Dagster's freshness checks), so the words can be tested without a page.
No Streamlit import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from dagster_project.model_card import ModelCard

OK, WARN, BAD = "ok", "warn", "bad"
_RANK = {OK: 0, WARN: 1, BAD: 2}
DEFAULT_MAX_AGE_HOURS = 26.0  # a daily schedule plus two hours of slack
MODEL_ASSET, DATA_ASSET = "collaborative_filtering_model", "raw_transactions"


def max_age_hours() -> float:
    """How old the model and the data may get before they count as stale (`RECOMART_MAX_AGE_HOURS`)."""
    from dagster_project.freshness import max_age_hours as configured

    try:
        return configured()
    except ValueError:  # the pipeline refuses the value by name; the page judges with the default meanwhile
        return DEFAULT_MAX_AGE_HOURS


def age_words(seconds: float) -> str:
    """'3 days', '5 hours', '12 minutes', 'a moment'."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "a moment"


def ago(epoch: float, now: float) -> str:
    words = age_words(max(0.0, now - epoch))
    return "just now" if words == "a moment" else f"{words} ago"


def day_time(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%d %b %Y %H:%M} UTC"


def duration_words(seconds: float | None) -> str:
    """'2 min 5 s', '48 s', '1 h 3 min'; an en dash when unknown."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "–"
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def first_line(message: str | None) -> str:
    """The first sentence-bearing line of an error, without a trailing full stop."""
    for line in (message or "").splitlines():
        line = line.strip().lstrip("-• ").strip()
        if line:
            return line.rstrip(".")
    return "no reason was recorded"


@dataclass(frozen=True)
class Freshness:
    """One asset's freshness as the app shows it: from Dagster's freshness check, or judged from a time."""

    state: str  # fresh / stale / unknown
    last_updated: float | None  # epoch seconds
    max_age_hours: float


def judged(last_updated: float | None, now: float, hours: float) -> Freshness:
    """The fallback when Dagster's freshness check cannot be read: age against the allowed maximum."""
    if last_updated is None:
        return Freshness("unknown", None, hours)
    return Freshness("fresh" if now - last_updated <= hours * 3600 else "stale", last_updated, hours)


def as_freshness(found: object, fallback: Freshness, now: float) -> Freshness:
    """Dagster's verdict (any object with state / last_updated / max_age_hours), else the fallback.

    Dagster judges freshness every half minute or so: a "stale" older than the last update (a refresh that
    just finished) is not believed.
    """
    state = str(getattr(found, "state", "") or "").lower()
    if state not in ("fresh", "stale"):
        return fallback
    updated = getattr(found, "last_updated", None)
    if isinstance(updated, datetime):
        updated = updated.timestamp()
    updated = updated if updated is not None else fallback.last_updated
    hours = float(getattr(found, "max_age_hours", None) or fallback.max_age_hours)
    if state == "stale" and updated is not None and now - updated <= hours * 3600:
        state = "fresh"
    return Freshness(state, updated, hours)


@dataclass(frozen=True)
class LastRun:
    """The newest refresh of either job, in the words the verdict needs."""

    label: str  # the job, for people
    status: str
    started: float | None
    duration: float | None
    failure: str | None = None  # why it failed, when it did
    run_url: str | None = None


@dataclass(frozen=True)
class Facts:
    now: float
    card: ModelCard | None
    model_problem: str | None = None  # why no model (or only a fallback) is served
    served_fallback: bool = False  # the served file was unusable: a kept version serves instead
    newest_kept: ModelCard | None = None  # the newest kept version, when it is not the served one
    pipeline_up: bool = True
    last_run: LastRun | None = None
    raw_transactions: int | None = None  # records in the latest read of the exports
    raw_read_at: float | None = None
    raw_run_id: str | None = None  # the run that read the exports last
    raw_at_training: int | None = None  # records the exports held when the served model was trained
    model_freshness: Freshness | None = None
    data_freshness: Freshness | None = None


@dataclass(frozen=True)
class Line:
    level: str
    icon: str
    text: str  # markdown


@dataclass
class Verdict:
    lines: list[Line] = field(default_factory=list)

    @property
    def level(self) -> str:
        return max((line.level for line in self.lines), key=_RANK.get, default=OK)

    @property
    def headline(self) -> str:
        if self.level == OK:
            return "All is well: customers get recommendations from the latest model, trained on fresh data."
        if self.level == WARN:
            return "Recommendations work, but something needs attention."
        return "Something needs fixing."


def _model_line(f: Facts) -> Line:
    if f.card is None:
        if f.model_problem and not f.model_problem.startswith("No model at"):  # a file that cannot be used
            return Line(BAD, ":material/block:", f"No model can be served. {f.model_problem}")
        return Line(BAD, ":material/block:", "No model is served yet: start a refresh to train one.")
    trained = datetime.fromisoformat(f.card.trained_at).timestamp()
    when = f"trained {ago(trained, f.now)} ({day_time(trained)})"
    if f.card.update is not None:
        updated = datetime.fromisoformat(f.card.update.updated_at).timestamp()
        when += f" and brought up to date with new purchases {ago(updated, f.now)}"
    if f.served_fallback:
        return Line(
            WARN,
            ":material/history:",
            f"The served model file cannot be used, so the newest kept version that loads is served: {when}. "
            "Start a refresh to train a new one.",
        )
    if f.newest_kept is not None:
        newer = datetime.fromisoformat(f.newest_kept.trained_at).timestamp()
        return Line(
            WARN,
            ":material/history:",
            f"Customers get an older model: rolled back to the version {when}. A newer version, trained "
            f"{day_time(newer)}, is kept; serve it again on the Model history page, or start a refresh.",
        )
    freshness = f.model_freshness
    if freshness is not None and freshness.state == "stale":
        return Line(
            WARN,
            ":material/schedule:",
            f"The model is stale: {when}, more than the {freshness.max_age_hours:g} hours allowed. "
            "Start a refresh, or check on the Runs page why the daily refresh did not run.",
        )
    return Line(OK, ":material/check_circle:", f"Customers get the latest model, {when}.")


def _run_line(f: Facts) -> Line | None:
    run = f.last_run
    if not f.pipeline_up:
        return Line(
            WARN, ":material/cloud_off:", "How the last refresh went is unknown while the pipeline service is down."
        )
    if run is None:
        return Line(WARN, ":material/info:", "No refresh has run yet: start one on the Refresh page.")
    when = ago(run.started, f.now) if run.started else "recently"
    link = f" [Details in the pipeline's own view]({run.run_url})" if run.run_url else ""
    if run.status == "SUCCESS":
        return Line(
            OK,
            ":material/check_circle:",
            f"The last refresh ({run.label}) succeeded {when}, in {duration_words(run.duration)}.",
        )
    if run.status == "FAILURE":
        return Line(
            BAD,
            ":material/error:",
            f"The last refresh ({run.label}, {when}) failed: {first_line(run.failure)}. "
            f"See the Runs page for the details and what to do.{link}",
        )
    if run.status in ("CANCELED", "CANCELING"):
        return Line(
            WARN, ":material/cancel:", f"The last refresh ({run.label}, {when}) was stopped before it finished.{link}"
        )
    return Line(OK, ":material/autorenew:", f"A refresh ({run.label}) is under way, started {when}.")


def _data_line(f: Facts) -> Line | None:
    if f.card is not None and f.raw_transactions is not None and f.raw_read_at is not None:
        trained = datetime.fromisoformat(f.card.refreshed_at).timestamp()
        changed = f.raw_at_training is None or f.raw_at_training != f.raw_transactions
        if f.raw_run_id != f.card.run_id and f.raw_read_at > trained and changed:
            return Line(
                WARN,
                ":material/sync_problem:",
                f"The model is older than the data: the exports read {ago(f.raw_read_at, f.now)} hold "
                f"{f.raw_transactions:,} purchases, but the model has {f.card.purchases:,}, learnt "
                f"{ago(trained, f.now)}. Start a refresh to bring it up to date.",
            )
    freshness = f.data_freshness
    if freshness is None or freshness.last_updated is None:
        return None
    age = age_words(max(0.0, f.now - freshness.last_updated))
    if freshness.state == "stale":
        return Line(
            WARN,
            ":material/schedule:",
            f"The data is {age} old: the shop's exports were last read {day_time(freshness.last_updated)}, "
            f"more than the {freshness.max_age_hours:g} hours allowed. Start a refresh.",
        )
    return Line(
        OK,
        ":material/check_circle:",
        f"The data is fresh: the shop's exports were read {ago(freshness.last_updated, f.now)}.",
    )


def verdict(facts: Facts) -> Verdict:
    lines = [_model_line(facts), _run_line(facts), _data_line(facts)]
    return Verdict([line for line in lines if line is not None])


@dataclass(frozen=True)
class Comparison:
    word: str  # Better / Worse / About the same
    sentence: str


def compare(ours: float, theirs: float, against: str) -> Comparison:
    """Our ranking score against another's, in words (within 2% counts as the same)."""
    if theirs <= 0:
        return Comparison(
            "Better" if ours > 0 else "About the same", f"{against} found nothing on the held-out purchases."
        )
    change = ours / theirs - 1
    if abs(change) < 0.02:
        return Comparison(
            "About the same", f"About as good as {against} at putting what customers bought next near the top."
        )
    word = "Better" if change > 0 else "Worse"
    return Comparison(
        word,
        f"{abs(change):.0%} {'better' if change > 0 else 'worse'} than {against} at putting what customers "
        "bought next near the top.",
    )
