"""Publishing a model without copying it: the served file is its kept version under a second name, and every
later publish, roll-back and prune leaves the other names' bytes as they were; an update's customer look-ups
give the full training's profiles, buyers missing from the customers table included."""

from __future__ import annotations

import os

import pandas as pd

from dagster_project import model_history, model_store, model_update
from dagster_project.fileio import atomic_link, sha256_of
from dagster_project.model_card import ModelParams
from dagster_project.recommender import load_model
from dagster_project.settings import MODEL_FILENAME
from dagster_project.training import train_model
from tests.workspace import prepared_tables


def versions(models) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in model_store.list_versions(models)}


def test_the_served_model_is_its_version_and_no_later_step_changes_another_name(sample_model, tmp_path):
    models = tmp_path / "models"
    first = model_store.publish(sample_model, models, "20260101T000000Z-first")
    served_file = models / MODEL_FILENAME
    [version] = model_store.list_versions(models)
    assert first == served_file and os.path.samefile(served_file, version)  # one file, two names: nothing copied
    assert load_model(served_file).card.version == "20260101T000000Z-first"

    for day in range(2, 8):  # more than KEEP_VERSIONS: the oldest names are pruned
        before = versions(models)
        model_store.publish(sample_model, models, f"2026010{day}T000000Z-day{day}")
        after = versions(models)
        assert all(after[name] == digest for name, digest in before.items() if name in after)  # kept ones untouched
        assert len(after) == min(day, model_store.KEEP_VERSIONS)
        assert load_model(served_file).card.version == f"2026010{day}T000000Z-day{day}"
    assert not list(models.rglob(".recomart-tmp-*"))  # no temporary name left behind

    # Rolling back serves an older version under the served name; publishing again leaves that version as it was.
    kept = model_store.list_versions(models)
    older, digest = kept[-1], sha256_of(kept[-1])
    model_store.roll_back(models, older)
    assert os.path.samefile(served_file, older) and load_model(served_file).card.version == model_store.version_name(
        older
    )
    assert [v.served for v in model_history.kept_cards(models)] == [False] * (len(kept) - 1) + [True]
    model_store.publish(sample_model, models, "20260109T000000Z-later")
    assert load_model(served_file).card.version == "20260109T000000Z-later"
    if older.exists():
        assert sha256_of(older) == digest
    # pruning the version the served name came from removes only that name: the served model still loads
    for path in model_store.list_versions(models):
        path.unlink()
    assert load_model(served_file).card.version == "20260109T000000Z-later"


def test_a_folder_without_hard_links_gets_a_copy(sample_model, tmp_path, monkeypatch):
    """Where the file system refuses hard links (os.link fails), the served file is a copy, as before."""
    source = model_store.publish(sample_model, tmp_path / "a", "20260101T000000Z-first")

    def refused(*_args, **_kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    target = atomic_link(source, tmp_path / "b" / MODEL_FILENAME)
    assert not os.path.samefile(source, target) and sha256_of(source) == sha256_of(target)
    assert not list((tmp_path / "b").glob(".recomart-tmp-*"))


def test_an_update_adds_buyers_missing_from_the_customers_table_after_it(sample_source):
    """Buyers the customers table does not list get profiles (after the table's), with the figures training gives."""
    transactions, products, users = prepared_tables(sample_source)
    cut = int(len(transactions) * 0.9)
    while transactions["timestamp"].iloc[cut] == transactions["timestamp"].iloc[cut - 1]:
        cut += 1
    old, new = transactions.iloc[:cut], transactions.iloc[cut:].reset_index(drop=True)
    unlisted = set(new["user_id"].unique()[:5]) | set(old["user_id"].unique()[:3])  # new and known buyers
    users = users[~users["user_id"].isin(unlisted)].reset_index(drop=True)
    params = ModelParams(factors=8, shrinkage=1.0, weighting="log")
    before = train_model(old, products, users, fixed=params)
    whole = train_model(transactions, products, users, fixed=params)
    covered = model_update.training_data({"a.csv": "1"}, "ref", None)
    updated, _ = model_update.update_model(before, new, covered, ["a.csv"])
    assert list(updated.user_ids) == list(whole.user_ids)
    assert unlisted <= set(updated.user_profiles.index)
    listed = len(users)  # the table's customers first, in its order; then the unlisted buyers
    pd.testing.assert_frame_equal(updated.user_profiles[:listed], whole.user_profiles[:listed], check_exact=False)
    pd.testing.assert_frame_equal(
        updated.user_profiles.sort_index(), whole.user_profiles.sort_index(), check_exact=False
    )
    for user in sorted(unlisted):
        assert updated.profile(user)["purchases"] == whole.profile(user)["purchases"] > 0
