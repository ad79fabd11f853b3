"""Bringing a trained model up to date with new purchases (model_update.py): the same histories a full
training on the whole data would hold, lists unchanged for customers who bought nothing, and a full
training whenever the new data does not only extend the old."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from dagster_project import model_update
from dagster_project.model_card import ModelParams, TrainingData
from dagster_project.recommender import load_model, save_model
from dagster_project.training import train_model
from tests.workspace import history_and_day

PARAMS = ModelParams(factors=16, shrinkage=1.0, weighting="log", neighbour_weight=0.3, rebuy_weight=1.0)


@pytest.fixture(scope="module")
def history(sample_source):
    """The sample's prepared tables, and a cut: the first 90% is what the model learnt, the rest the new day."""
    return history_and_day(sample_source)


def data(files: dict[str, str], last: str | None = None, reference: str = "ref") -> TrainingData:
    return model_update.training_data(files, reference, last)


def test_an_update_holds_what_training_on_everything_holds(history, tmp_path):
    transactions, products, users, cut = history
    old, new = transactions.iloc[:cut], transactions.iloc[cut:].reset_index(drop=True)
    before = train_model(old, products, users, fixed=PARAMS)
    whole = train_model(transactions, products, users, fixed=PARAMS)
    covered = data({"a.csv": "1", "b.csv": "2"}, model_update.latest(transactions["timestamp"]))
    updated, changed = model_update.update_model(before, new, covered, ["b.csv"], run_id="run-2")

    # the histories, customer order and profiles are the full training's
    assert list(updated.user_ids) == list(whole.user_ids)
    assert (updated.counts != whole.counts).nnz == 0 and updated.counts.dtype == whole.counts.dtype
    pd.testing.assert_frame_equal(updated.user_profiles, whole.user_profiles, check_exact=False)
    assert set(changed) == set(new["user_id"]) and len(changed) == new["user_id"].nunique()
    new_customers = set(new["user_id"]) - set(old["user_id"])
    assert new_customers, "the cut should bring customers the model has not seen"

    # what training learnt stays; the card says what was added
    np.testing.assert_array_equal(updated.item_factors, before.item_factors)
    np.testing.assert_array_equal(updated.popularity, before.popularity)
    card = updated.card
    assert card.trained_at == before.card.trained_at and card.params == before.card.params
    assert card.update.transactions == len(new) and card.update.updates == 1
    assert card.update.files == card.update.latest_files == ["b.csv"]
    assert card.update.new_customers == len(new_customers) and card.update.customers == len(changed)
    assert card.data == covered and card.run_id == "run-2"
    assert card.data_checksum == model_update.combined_checksum(covered)

    # customers who bought nothing new get the same lists as before; the new customers get lists of their own
    quiet = [u for u in before.user_ids[:200] if u not in set(changed)]
    for user in quiet[:20]:
        pd.testing.assert_frame_equal(updated.recommend(user), before.recommend(user))
        pd.testing.assert_frame_equal(updated.buy_again(user), before.buy_again(user))
    newcomer = sorted(new_customers)[0]
    assert not before.knows_user(newcomer) or before.user_index(newcomer) is None
    assert updated.user_index(newcomer) is not None and len(updated.recommend(newcomer)) == 10

    # the updated model round-trips through its file, card and all; a second update counts on
    loaded = load_model(save_model(updated, tmp_path / "model.pkl"))
    assert loaded.card == card and (loaded.counts != updated.counts).nnz == 0
    again, _ = model_update.update_model(loaded, new.iloc[:0], covered, [], run_id="run-3")
    assert again.card.update.updates == 2 and again.card.update.transactions == len(new)


def test_only_new_files_after_the_old_ones_extend_a_model():
    before = data({"t_2026-01.csv": "a", "t_2026-02.csv": "b"}, "2026-02-28T12:00:00+00:00")
    assert model_update.extension(before, data({**before.files, "t_2026-03.csv": "c"})) == (
        ["t_2026-03.csv"],
        "one new purchase file",
    )
    assert model_update.extension(before, data(before.files))[0] == []
    cases = {
        "does not say which purchase files": (None, data(before.files)),
        "customers or the products changed": (before, data(before.files, reference="other")),
        "t_2026-02.csv changed": (before, data({"t_2026-01.csv": "a", "t_2026-02.csv": "B"})),
        "t_2026-01.csv left the data folder": (before, data({"t_2026-02.csv": "b", "t_2026-03.csv": "c"})),
        "t_2025-12.csv is named before": (before, data({**before.files, "t_2025-12.csv": "z"})),
    }
    for words, (old, now) in cases.items():
        files, why = model_update.extension(old, now)
        assert files is None and words in why, (words, why)


def test_purchases_older_than_the_history_need_a_training():
    before = data({"a.csv": "1"}, "2026-02-28T12:00:00+00:00")
    times = pd.Series(pd.to_datetime(["2026-03-01 08:00", "2026-02-27 23:00"], utc=True))
    assert "2026-02-27 23:00" in model_update.older_purchases(before, times)
    assert model_update.older_purchases(before, times.iloc[:1]) is None
    assert model_update.older_purchases(data({"a.csv": "1"}, None), times) is None


def test_a_full_training_is_due_when_the_model_has_aged_or_grown(sample_model):
    policy = model_update.UpdatePolicy(retrain_after_days=7, retrain_after_growth=0.2)
    trained = datetime.fromisoformat(sample_model.card.trained_at)
    size = sample_model.card.transactions
    assert model_update.retrain_reason(sample_model, 10, policy, trained + timedelta(days=1)) is None
    assert "8.0 days ago" in model_update.retrain_reason(sample_model, 10, policy, trained + timedelta(days=8))
    grown = model_update.retrain_reason(sample_model, size // 5 + 1, policy, trained + timedelta(hours=1))
    assert grown and "over 20% of the" in grown
    # what earlier updates added counts too
    from dagster_project.model_card import ModelUpdate

    earlier = ModelUpdate(datetime.now(UTC).isoformat(), 3, ["x"], ["x"], size // 5, 5, 1)
    aged = replace(sample_model, card=replace(sample_model.card, update=earlier))
    assert model_update.retrain_reason(aged, 1, policy, trained + timedelta(hours=1))


def test_features_brought_up_to_date_equal_a_full_count(history):
    from dagster_project import features

    transactions, products, users, cut = history
    old, new = transactions.iloc[:cut], transactions.iloc[cut:].reset_index(drop=True)
    stored = features.interaction_table(old)
    extended = features.extend(stored, new, users, products)
    whole = features.build(transactions, users, products)
    for got, want in zip(extended, whole, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=False)
    assert len(extended[2]) > len(stored)  # new pairs were appended (and some bought again: see the sums)
    assert features.extend(features.interaction_table(transactions), None, users, products)[2].equals(whole[2])


def test_lists_build_only_on_the_version_an_update_was_made_from(sample_model, tmp_path):
    """A roll-back between two updates serves another version: the stored lists are not the ones to build on."""
    from dagster_project import customer_lists
    from dagster_project.model_card import ModelUpdate

    def version(name: str, updates: int, based_on: str | None):
        update = ModelUpdate("2026-11-27T00:00:00+00:00", updates, [], [], 0, 0, 0, based_on) if updates else None
        return replace(sample_model, card=replace(sample_model.card, version=name, update=update))

    customer_lists.write_for_model(version("v2", 1, "v1"), tmp_path)  # lists of an update made from v1
    assert customer_lists.stored_relation(version("v2", 1, "v1"), tmp_path) == "current"
    assert customer_lists.stored_relation(version("v3", 2, "v2"), tmp_path) == "previous"  # v2 updated again
    assert customer_lists.stored_relation(version("v3", 1, "v1"), tmp_path) == "other"  # rolled back to v1, updated
    assert customer_lists.stored_relation(version("v3", 3, "v2"), tmp_path) == "other"  # an update skipped


def test_run_settings_that_train_the_same_model_keep_updates(sample_model):
    from dagster_project.defs.assets.model import _settings_differ
    from dagster_project.defs.run_config import ModelConfig

    card = sample_model.card  # fixed settings: 16 factors, shrinkage 1, log
    same = ModelConfig(auto_tune=False, factors=16, shrinkage=1.0, weighting="log")
    assert _settings_differ(card, same) is None
    capped = replace(card, params=replace(card.params, factors=12))  # the data allowed 12 of the 16 asked for
    assert _settings_differ(capped, same) is None
    assert _settings_differ(capped, ModelConfig(auto_tune=False, factors=64, shrinkage=1.0, weighting="log")) is None
    assert _settings_differ(capped, ModelConfig(auto_tune=False, factors=8, shrinkage=1.0, weighting="log"))
    assert _settings_differ(card, ModelConfig(auto_tune=False, factors=8, shrinkage=1.0, weighting="log"))
    assert "tuning" in _settings_differ(card, ModelConfig())
    tuned = replace(card, selection="chosen on a validation slice (time split)")
    assert "was tuned" in _settings_differ(tuned, same)


def test_the_model_card_says_what_was_added_since_training(sample_model):
    from dagster_project.model_card import ModelUpdate
    from streamlit_app.tables import update_text

    files = [f"transactions_2026-11-0{i}.csv" for i in range(1, 6)]
    once = ModelUpdate("2026-11-27T02:00:04+00:00", 1, files[:1], files[:1], 2740, 2611, 1)
    said = update_text(replace(sample_model.card, update=once))
    assert said.startswith("Brought up to date once since, without training again: 2,740 new purchases")
    assert "transactions\\_2026-11-01.csv" in said and "one customer new to it" in said
    assert "on 2026-11-27 02:00 UTC" in said
    many = replace(once, updates=5, files=files, new_customers=12)
    said = update_text(replace(sample_model.card, update=many))
    assert "5 times" in said and "12 customers new to it" in said and "and 2 more" in said
    assert update_text(sample_model.card) == ""
