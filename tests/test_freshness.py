"""Freshness: Dagster's own policy on the model and the raw transactions, read back by the app."""

import time

import pytest

from dagster_project.freshness import DEFAULT_MAX_AGE_HOURS, MAX_AGE_ENV, max_age_hours
from tests.servers import wait_until


def test_max_age_comes_from_the_environment():
    assert max_age_hours({}) == DEFAULT_MAX_AGE_HOURS == 26
    assert max_age_hours({MAX_AGE_ENV: "48"}) == 48
    assert max_age_hours({MAX_AGE_ENV: "0.5"}) == 0.5
    assert max_age_hours({MAX_AGE_ENV: "0.0167"}) == 0.0167  # one minute: Dagster's shortest window
    for bad in ("soon", "0", "-3", "0.01", "99999"):
        with pytest.raises(ValueError, match=MAX_AGE_ENV):
            max_age_hours({MAX_AGE_ENV: bad})


def test_model_and_transactions_are_fresh_after_a_refresh(live, trained):
    """The daemon judges freshness about every 30 s: wait for its verdict, as the Dagster UI would."""
    fresh = wait_until(
        lambda: (f := live.api.freshness()) and all(x.state == "fresh" for x in f.values()) and f,
        120,
        "Dagster judging the model and the raw transactions fresh",
        1,
    )
    assert set(fresh) == {"collaborative_filtering_model", "raw_transactions"}
    model = fresh["collaborative_filtering_model"]
    assert model.max_age_hours == 26
    latest = live.api.materializations("collaborative_filtering_model", 1)[0]
    assert model.last_updated == pytest.approx(latest["timestamp"])
    assert 0 <= model.age_hours(time.time()) < 1
    assert live.api.freshness(("prepared_users",)) == {}  # no policy, no verdict
