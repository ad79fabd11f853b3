"""The Overview's and Data quality page's words from plain facts (no server): durations, reasons, freshness,
comparisons, and example rows that lead with the file and the row."""

from __future__ import annotations

from types import SimpleNamespace

from dagster_project import validation
from streamlit_app import quality, tables, verdict
from tests.workspace import small_frames


def test_durations_and_reasons_in_words():
    assert verdict.duration_words(125) == "2 min 5 s"
    assert verdict.duration_words(4.44) == "4.4 s"
    assert verdict.duration_words(3720) == "1 h 2 min"
    assert verdict.duration_words(None) == verdict.duration_words(float("nan")) == "–"
    assert verdict.first_line("\n- Quality score 30 is below the threshold 50.\nFix it.") == (
        "Quality score 30 is below the threshold 50"
    )
    assert verdict.first_line(None) == "no reason was recorded"
    assert tables.started_by({"dagster/schedule_name": "daily_pipeline"}) == "The daily schedule"
    assert tables.started_by({"recomart/launched_by": "app", "recomart/user": "olga"}) == "olga in the app"
    assert tables.job_label("complete_pipeline_job") == "Complete pipeline"


def test_freshness_trusts_dagster_but_not_a_verdict_older_than_the_last_update():
    now = 1_000_000.0
    fallback = verdict.judged(now - 30 * 3600, now, 26)
    assert fallback.state == "stale"
    fresh_in_dagster = SimpleNamespace(state="fresh", last_updated=now - 3600, max_age_hours=26.0)
    assert verdict.as_freshness(fresh_in_dagster, fallback, now).state == "fresh"
    lagging = SimpleNamespace(state="stale", last_updated=now - 60, max_age_hours=26.0)  # judged before the refresh
    assert verdict.as_freshness(lagging, fallback, now).state == "fresh"
    stale = SimpleNamespace(state="stale", last_updated=now - 27 * 3600, max_age_hours=26.0)
    assert verdict.as_freshness(stale, fallback, now).state == "stale"
    unknown = SimpleNamespace(state="unknown", last_updated=None, max_age_hours=26.0)
    assert verdict.as_freshness(unknown, fallback, now) == fallback


def test_comparisons_say_better_worse_or_the_same():
    assert verdict.compare(0.33, 0.29, "best-sellers").word == "Better"
    assert verdict.compare(0.25, 0.29, "best-sellers").sentence.startswith("14% worse than best-sellers")
    assert verdict.compare(0.300, 0.299, "the previous model").word == "About the same"


def test_examples_lead_with_file_and_row_and_the_fix_is_the_gates():
    report = validation.validate(small_frames())
    views = quality.from_report(report.judged(99.0))
    email = next(v for v in views if v.name == "email_valid")
    assert email.passed is False and email.fix == validation.FIXES["email_valid"]
    assert email.fix in report.judged(99.0).gate_message() or email.failing_rows < max(
        c.failing_rows for c in report.failed()
    )
    frame = quality.checks_frame(views, {"user_id_unique": 1})
    assert set(frame["What it means"]) == {"Advisory", "Blocks training"}
    assert frame.set_index("Check").loc["Customer id not repeated", "Rows left out"] == "1"
    passed = frame[frame["Result"] == "Passed"]
    assert (passed["What it means"] == "Advisory").all()  # never "WARN" on a passed check
    # Dagster hands the examples back with sorted keys; the page puts the file and the row first.
    sorted_keys = quality.CheckView(
        "email_valid", "users", False, False, 1, 3, [{"email": None, "source_file": "u.csv", "source_row": "4"}]
    )
    assert quality.examples_frame(sorted_keys).iloc[0].to_dict() == {"File": "u.csv", "Row": "4", "email": "(empty)"}


def test_no_model_says_why():
    none_yet = verdict.verdict(verdict.Facts(now=0.0, card=None, model_problem="No model at /m: run the pipeline."))
    assert none_yet.level == verdict.BAD and "No model is served yet: start a refresh" in none_yet.lines[0].text
    broken = verdict.verdict(verdict.Facts(now=0.0, card=None, model_problem="Model file /m cannot be used: x."))
    assert "No model can be served. Model file /m cannot be used" in broken.lines[0].text
