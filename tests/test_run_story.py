"""A refresh in words (streamlit_app/run_story.py): progress, steps, before → after, failure text."""

from __future__ import annotations

from streamlit_app import run_story
from streamlit_app.dagster_api import Run, Step


def a_run(status: str, steps: tuple[Step, ...] = ()) -> Run:
    return Run("r1", "complete_pipeline_job", status, steps=steps)


def test_progress_in_words():
    for waiting in ("QUEUED", "NOT_STARTED", "STARTING"):
        assert run_story.progress(a_run(waiting)) == (0.0, "Waiting for the pipeline to start…")
    steps = (
        Step("raw_data", "SUCCESS", 1.0, 3.0),
        Step("validation_report", "IN_PROGRESS", 3.0),
        Step("prepared_data", "NOT_STARTED"),
    )
    share, words = run_story.progress(a_run("STARTED", steps))
    assert share == 1 / 3 and words == "Running: score the data quality (1 step done)…"
    rows = run_story.steps_rows(a_run("STARTED", steps))
    assert rows[0] == {
        "step": "Read the exports and check their quality",
        "status": "done",
        "took": "2.0 s",
        "key": "raw_data",
    }
    assert rows[2]["status"] == "waiting" and rows[2]["took"] == ""  # never "None"
    assert run_story.job_label("ingestion_job") == "Check the exports only"
    assert run_story.step_label("some_new_step") == "Some new step"


def test_durations_and_sizes_in_words():
    assert [run_story.duration_words(s) for s in (None, 4.24, 185, 3725)] == ["", "4.2 s", "3 min 05 s", "1 h 02 min"]
    assert [run_story.size_words(n) for n in (512, 68_100, 57_700_000)] == ["512 bytes", "68.1 kB", "57.7 MB"]


def test_before_and_after_from_the_materializations():
    def entry(run_id: str, **metadata) -> dict:
        return {"run_id": run_id, "timestamp": 0.0, "metadata": metadata}

    def card(hit_rate: float) -> dict:
        return {"new": {"svd": {"hit_rate": hit_rate}}}

    histories = {
        "raw_users": [entry("new", records=1386), entry("old", records=1383)],
        "raw_products": [entry("new", records=101), entry("old", records=101)],
        "raw_transactions": [entry("new", records=3001)],  # first run: nothing to compare
        "validation_report": [entry("new", quality_score=96.12), entry("old", quality_score=96.1)],
        "collaborative_filtering_model": [entry("new", metrics=card(0.62)), entry("old", metrics=card(0.59))],
    }
    found = {c.label: c for c in run_story.changes(histories, "new")}
    assert found["Customers"].shown(found["Customers"].after) == "1,386" and found["Customers"].delta == "+3"
    assert found["Products"].delta == "no change" and found["Purchases"].delta is None
    assert found["Quality score"].delta == "no change"  # 0.02 points is no change at one decimal
    model = found["Hit rate of the new model"]
    assert model.shown(model.after) == "62%" and model.delta == "+3.0 points"
    assert "more often than the previous one" in run_story.model_verdict(list(found.values()))
    assert run_story.changes(histories, "a-run-that-wrote-nothing") == []


def test_failure_text_is_wrapped_markdown_that_shows_as_written():
    message = (
        "Quality score 31.1 is below the threshold 50.0: the run stopped.\n"
        "- user_known on transactions: 3001 of 3001 rows fail (e.g. transactions.csv row 1).\n"
        "- email_valid on users: 48 of 1383 rows fail.\n"
        "Fix those rows in the export."
    )
    text = run_story.failure_markdown(message)
    assert "- user\\_known on transactions" in text and "- email\\_valid" in text
    assert "stopped.\n\n- user" in text and "fail.\n\nFix those rows" in text  # a list between paragraphs
    assert run_story.failure_markdown(None) == "The pipeline did not say why."
