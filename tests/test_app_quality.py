"""The Data quality page through AppTest on a live webserver: each failing check with its example rows and
the fix (the quality gate's own words), severity as what it means, and the last report when Dagster is down."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dagster_project import validation
from tests.apptest import open_page
from tests.overview_states import make_failed, make_healthy
from tests.servers import free_port


def quality_page() -> AppTest:
    return open_page("data_quality", fresh=True)


def problem(at: AppTest, label_start: str):
    found = [e for e in at.expander if e.label.startswith(label_start)]
    assert len(found) == 1, [e.label for e in at.expander]
    return found[0]


def checks_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Check" in d.value.columns).set_index("Check")


def test_failing_check_shows_example_rows_and_what_to_do(verdict_env):
    live = verdict_env
    make_healthy(live)
    at = quality_page()
    assert "The data is good enough to train on" in at.info[0].value

    dagster = next(c for c in live.api.check_results() if c["check"] == "email_valid")
    email = problem(at, "Customers: e-mail address valid — ")
    assert f"{dagster['failing_rows']:,} of {dagster['total_rows']:,} rows" in email.label
    words = "\n".join(m.value for m in email.markdown)
    assert "What to do:" in words and validation.FIXES["email_valid"].split(" (")[0] in words
    assert "the customer is kept; the e-mail is left empty" in words
    examples = email.dataframe[0].value
    assert list(examples.columns[:2]) == ["File", "Row"]
    first = dagster["examples"][0]
    assert (first["source_file"], first["source_row"]) == tuple(examples.iloc[0][["File", "Row"]])

    table = checks_table(at)
    assert set(table["What it means"]) == {"Advisory", "Blocks training"}
    assert table.loc["Quality score at least the minimum", "What it means"] == "Blocks training"
    assert table.loc["Customer id filled in", "Result"] == "Passed"
    assert not table.astype(str).isin(["WARN", "ERROR", "None", "nan"]).any().any()
    # failing rows beside rows left out: a corrected e-mail leaves the customer in
    assert table.loc["E-mail address valid", "Rows left out"] == "0"
    assert (
        table.loc["Customer known", "Rows left out"] == table.loc["Customer known", "Rows with the problem"].split()[0]
    )


def test_failed_gate_and_the_same_fix_as_its_message(verdict_env, monkeypatch):
    live = verdict_env
    make_failed(live)
    at = quality_page()
    assert "Training was stopped: the data quality is" in at.error[0].value
    assert checks_table(at).loc["Quality score at least the minimum", "Result"] == "Problems found"
    run = next(r for r in live.api.runs(limit=5) if r.status == "FAILURE")
    message = live.api.failure_message(run.run_id)
    named = [name for name in validation.FIXES if f"- {name} on " in message]
    assert named, message
    for name in named:  # the gate's message and the page give the same fix
        fix = validation.FIXES[name]
        assert fix in message
        shown = [e for e in at.expander if fix.split(" (")[0] in "\n".join(m.value for m in e.markdown)]
        assert shown, (name, [e.label for e in at.expander])

    # With the pipeline service down, the page shows the report the pipeline last wrote, once explained.
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    at = quality_page()
    assert len([e for e in at.error if "pipeline service is not answering" in e.value]) == 1
    assert any("From the report the pipeline last wrote" in c.value for c in at.caption)
    assert problem(at, "Customers: e-mail address valid — ").dataframe[0].value.shape[0] > 0
    monkeypatch.setenv("DAGSTER_PORT", str(live.server.port))
    make_healthy(live)
