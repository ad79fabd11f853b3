"""Model history: kept versions with their cards, and how much two models' lists differ."""

import numpy as np
import pytest

from dagster_project import model_history, model_store
from dagster_project.model_card import ModelParams
from dagster_project.settings import MODEL_FILENAME
from tests.workspace import train_on


@pytest.fixture(scope="module")
def other_model(sample_source):
    """A different model of the same shop: other settings, trained on the earlier 80 % of purchases."""
    return train_on(sample_source, ModelParams(factors=4, shrinkage=0.0, weighting="binary"), share=0.8)


def top10(model, user) -> set[str]:
    return set(model.recommend(user, n=10)["product_id"])


def test_list_change_between_two_different_models(sample_model, other_model):
    change = model_history.list_change(sample_model, other_model, sample=300, seed=1)
    both = sample_model.user_ids.intersection(other_model.user_ids)
    assert change.customers_compared == 300 < len(both)
    assert 0 < change.changed <= 300 and 0 < change.mean_overlap < 1
    # the same figures, one customer at a time through recommend()
    chosen = both[np.sort(np.random.default_rng(1).choice(len(both), 300, replace=False))]
    overlaps = [len(top10(sample_model, u) & top10(other_model, u)) / 10 for u in chosen]
    assert change.mean_overlap == pytest.approx(np.mean(overlaps))
    assert change.changed == sum(top10(sample_model, u) != top10(other_model, u) for u in chosen)
    assert change.changed_share == pytest.approx(change.changed / 300)
    # the served model knows customers who bought only in the later 20 %: a roll-back would lose them
    assert change.missing_customers == len(sample_model.user_ids.difference(other_model.user_ids)) > 0
    assert change.missing_products == 0
    assert model_history.list_change(other_model, sample_model).missing_customers == 0

    same = model_history.list_change(sample_model, sample_model, sample=200)
    assert (same.changed, same.mean_overlap, same.missing_customers) == (0, 1.0, 0)


def test_kept_cards_list_every_version_and_mark_the_served_one(sample_model, other_model, tmp_path):
    model_store.publish(other_model, tmp_path, "20260101T000000Z-first")
    model_store.publish(sample_model, tmp_path, "20260102T000000Z-second")
    broken = model_store.versions_dir(tmp_path) / "collaborative_filtering-20260103T000000Z-broken.pkl"
    broken.write_bytes(b"not a model")
    kept = model_history.kept_cards(tmp_path)
    assert [v.name for v in kept] == ["20260103T000000Z-broken", "20260102T000000Z-second", "20260101T000000Z-first"]
    assert [v.served for v in kept] == [False, True, False]
    assert kept[0].card is None and "not a RecoMart model file" in kept[0].problem
    assert kept[1].card.params == sample_model.params and kept[1].problem is None
    assert kept[2].card.params.factors == 4 and kept[2].path.is_file()

    model_store.roll_back(tmp_path, kept[2].path)
    assert [v.served for v in model_history.kept_cards(tmp_path)] == [False, False, True]
    (tmp_path / MODEL_FILENAME).write_bytes(b"damaged")
    assert not any(v.served for v in model_history.kept_cards(tmp_path))
