"""Variety: the knob for how much of the catalogue the new-product lists show, and what it costs.

On a generated shop: asking for more variety gives lists that cover more of the catalogue; the model
card keeps the accuracy-variety curve the tuner explored, with the chosen point, across a save and a
load; the blend with item neighbours is served exactly as it was measured; out-of-range values are
refused by the pipeline and by the Refresh form, in words.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pydantic
import pytest

from dagster_project import evaluation as ev
from dagster_project.defs.run_config import ModelConfig, check_run_config
from dagster_project.model_card import ModelParams
from dagster_project.recommender import load_model, save_model
from dagster_project.sample_data import generate
from dagster_project.scorers import ShrunkSvd
from dagster_project.training import TrainingSettings, count_matrix, train_model
from streamlit_app.run_requests import RefreshOptions, build_run_config
from tests.workspace import prepared_tables

QUICK = dict(factor_grid=(8, 16), shrinkage_grid=(1.0, 10.0), weightings=("log",), rebuy_grid=(1.0,))


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("variety")
    generate(out, users=3000, products=2000, transactions=30000, seed=7)
    return prepared_tables(out)


@pytest.fixture(scope="module")
def models(shop):
    """The same shop trained asking for no variety, and for half the catalogue."""
    transactions, products, users = shop
    return {
        floor: train_model(transactions, products, users, TrainingSettings(min_coverage=floor, **QUICK))
        for floor in (0.0, 0.5)
    }


def chosen(model):
    points = [t for t in model.card.curve if model.card.is_chosen(t)]
    assert len(points) == 1, points
    return points[0]


def test_more_variety_asked_gives_lists_that_cover_more_of_the_catalogue(models) -> None:
    plain, varied = models[0.0], models[0.5]
    assert varied.card.min_coverage == 0.5 and plain.card.min_coverage == 0.0
    assert chosen(varied).coverage > chosen(plain).coverage
    assert varied.card.metrics["new"]["svd"].coverage > plain.card.metrics["new"]["svd"].coverage
    assert varied.params.neighbour_weight > plain.params.neighbour_weight
    # without a floor the tuner takes the most accurate setting it tried
    assert chosen(plain).ndcg == max(t.ndcg for t in plain.card.curve)


def test_the_card_keeps_the_accuracy_variety_curve_through_a_save_and_a_load(models, tmp_path: Path) -> None:
    model = models[0.5]
    curve = model.card.curve
    assert len(curve) >= 8
    assert {round(t.params.neighbour_weight, 2) for t in curve} >= {0.0, 0.1, 1.0}
    assert all(0.0 <= t.coverage <= 1.0 and 0.0 <= t.ndcg <= 1.0 for t in curve)
    loaded = load_model(save_model(model, tmp_path / "model.pkl"))
    assert loaded.card.curve == curve and loaded.card.min_coverage == 0.5
    assert chosen(loaded) == chosen(model)
    assert loaded.neighbours.nnz == model.neighbours.nnz > 0


def test_the_blend_is_served_as_it_was_measured(shop) -> None:
    transactions, products, users = shop
    params = ModelParams(factors=8, shrinkage=1.0, weighting="log", neighbour_weight=0.5)
    model = train_model(transactions, products, users, TrainingSettings(**QUICK), fixed=params)
    counts = count_matrix(transactions, model.user_ids, pd.Index(products["product_id"]))
    measured = ShrunkSvd(params).fit(counts)
    rows = np.arange(0, model.n_users, max(1, model.n_users // 50))
    expected = ev.top_lists(measured.score(rows), 10, counts[rows])
    for row, best in zip(rows, expected):
        served = model.recommend(model.user_ids[row], 10)["product_id"].tolist()
        assert served == products["product_id"].iloc[best[best >= 0]].tolist()
    assert np.allclose(model.score_users(rows), measured.score(rows), atol=1e-4)


def test_variety_out_of_range_is_refused_by_the_pipeline_and_by_the_refresh_form() -> None:
    for bad in (-0.1, 0.9):
        with pytest.raises(pydantic.ValidationError):
            ModelConfig(min_coverage=bad)
        with pytest.raises(dg.Failure, match="min_coverage"):
            check_run_config({"ops": {"collaborative_filtering_model": {"config": {"min_coverage": bad}}}})
        options = RefreshOptions(min_coverage=bad)
        assert options.problems() == ["Variety must be between 0% and 50%."]
        with pytest.raises(ValueError, match="Variety"):
            build_run_config("complete_pipeline_job", options)
    config = build_run_config("complete_pipeline_job", RefreshOptions(min_coverage=0.2))
    assert config["ops"]["collaborative_filtering_model"]["config"]["min_coverage"] == 0.2


def test_model_history_page_shows_the_curve_with_the_served_setting_marked(models, tmp_path, monkeypatch) -> None:
    """The page a merchandiser reads: the variety verdict in words, then NDCG@10 against coverage."""
    import json

    import pyarrow as pa
    from streamlit.testing.v1 import AppTest

    from dagster_project import model_store
    from tests.servers import free_port
    from tests.workspace import APP

    model = models[0.5]
    for key, value in {
        "RECOMART_DATA_DIR": str(tmp_path / "data"),
        "RECOMART_STORAGE_DIR": str(tmp_path / "storage"),
        "RECOMART_MODELS_DIR": str(tmp_path / "models"),
        "DAGSTER_PORT": str(free_port()),  # Dagster down: the curve comes from the model file alone
    }.items():
        monkeypatch.setenv(key, value)
    model_store.publish(model, tmp_path / "models", "20261127T120000Z-variety1")

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/model_history.py").run()
    assert not at.exception, at.exception
    point = chosen(model)
    verdict = next(m.value for m in at.markdown if "Variety" in m.value)
    assert f"{point.coverage:.1%} of the catalogue" in verdict and "asked: at least 50%" in verdict
    (chart,) = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    data = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    assert len(data) == len(model.card.curve)
    served = data[data["point"] == "Served setting"]
    assert len(served) == 1
    assert served["coverage"].iloc[0] == pytest.approx(point.coverage)
    assert served["ndcg"].iloc[0] == pytest.approx(point.ndcg)
    spec = json.dumps(json.loads(chart.proto.spec))
    assert "NDCG@10" in spec and "Variety" in spec


def test_refresh_page_offers_variety_with_the_pipelines_bounds_and_default(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.servers import free_port
    from tests.workspace import APP

    monkeypatch.setenv("RECOMART_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DAGSTER_PORT", str(free_port()))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/refresh.py").run()
    assert not at.exception, at.exception
    (variety,) = [s for s in at.slider if s.label.startswith("Variety")]
    assert (variety.min, variety.max) == (0, 50)
    assert variety.value == round(ModelConfig().min_coverage * 100)
    assert "catalogue coverage" in variety.help
    (tune,) = [c for c in at.checkbox if c.label == "Tune the model automatically"]
    tune.uncheck().run()
    assert [s for s in at.slider if s.label.startswith("Variety")][0].disabled  # variety is what tuning aims at


def test_every_customers_lists_are_what_recommend_shows_with_the_blend(shop, tmp_path) -> None:
    from dagster_project import customer_lists

    transactions, products, users = shop
    params = ModelParams(factors=8, shrinkage=1.0, weighting="log", rebuy_weight=1.0, neighbour_weight=0.3)
    model = train_model(transactions, products, users, TrainingSettings(**QUICK), fixed=params)
    customer_lists.write(
        customer_lists.build(model, block=300),
        customer_lists.dataset_path(tmp_path),
        customer_lists.catalogue_counts(model),
    )
    frame = customer_lists.read(tmp_path)
    compared = ["product_id", "reason", "because", "explanation"]
    for user in np.random.default_rng(5).choice(model.user_ids.to_numpy(), 30, replace=False):
        mine = frame[frame["user_id"] == user]
        for list_name, single in (
            ("new", model.recommend(user, n=10)),
            ("buy_again", model.recommend(user, n=10, exclude_purchased=False)),
        ):
            got = mine[mine["list"] == list_name].reset_index(drop=True)
            np.testing.assert_allclose(got["score"], single["score"], atol=2e-6)

            def rows(f: pd.DataFrame) -> list:  # the same scores in order; products of equal score in either order
                return sorted(zip(*(f[c].map(str) for c in compared)))

            assert rows(got) == rows(single), (user, list_name)
