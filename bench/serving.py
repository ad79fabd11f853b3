"""Serving: a customer's top-10 (with why each product) from the loaded model, customer search, the
Recommendations page's time to show a list, and (on the sample) the time from clicking "Start refresh"
to the page showing success.

The model is trained on the 1M-transaction dataset (100,000 customers, 10,000 products).

    python -m bench.serving
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.model_quality import load
from dagster_project import model_store, training
from dagster_project.recommender import load_model

ROOT = Path(__file__).resolve().parent.parent

APP = str(ROOT / "streamlit_app" / "app.py")


def percentiles(times_ms: list[float]) -> str:
    p50, p95 = np.percentile(times_ms, [50, 95])
    return f"p50 {p50:.3f} ms, p95 {p95:.3f} ms, max {max(times_ms):.3f} ms"


def model_latency(models: Path, n: int = 2000) -> None:
    model = load_model(models / "collaborative_filtering.pkl")
    rng = np.random.default_rng(0)
    users = rng.choice(model.user_ids.to_numpy(), n, replace=False)
    for kind, call in (
        ("recommend(user, 10) with because and explanation", lambda u: model.recommend(u, 10)),
        (
            "recommend(user, 10, exclude_purchased=False) with because and explanation",
            lambda u: model.recommend(u, 10, False),
        ),
        ("buy_again(user, 10)", lambda u: model.buy_again(u, 10)),
        ("similar_items(product, 10)", None),
    ):
        times, cpu = [], []
        for u in users:
            target = model.items["product_id"].iloc[hash(u) % model.n_items] if call is None else u
            start, cpu_start = time.perf_counter(), time.process_time()
            (model.similar_items(target, 10) if call is None else call(target))
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
        print(
            f"- {kind}: {percentiles(times)}; CPU time {percentiles(cpu)} ({n} calls, {model.n_users:,} customers "
            f"x {model.n_items:,} products)"
        )
    times = []
    for u in users[:100]:
        start = time.perf_counter()
        model.search_users(u[:3], 50)
        times.append((time.perf_counter() - start) * 1000)
    print(
        f"- search_users(first 3 digits of an id, 50) over {len(model.customers()):,} customers' ids, names and "
        f"e-mails: {percentiles(times)} (100 calls)"
    )


def page_time(models: Path, n: int = 20) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["RECOMART_MODELS_DIR"] = str(models)
    os.environ["DAGSTER_PORT"] = "9"  # no webserver: the page must not need one
    model = load_model(models / "collaborative_filtering.pkl")
    users = np.random.default_rng(1).choice(model.user_ids.to_numpy(), n, replace=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/recommendations.py")
    start = time.perf_counter()
    at.run()
    first = (time.perf_counter() - start) * 1000
    times = []
    for user in users:
        start = time.perf_counter()
        at.text_input(key="customer_query").set_value(str(user)).run()
        times.append((time.perf_counter() - start) * 1000)
        shown = [d.value for d in at.dataframe if "why" in d.value.columns]  # the customer's list, every column
        assert shown and len(shown[0]) == 10, "the list did not show"
    print(f"- Recommendations page open (model already cached by the Overview page): {first:.0f} ms")
    print(f"- Recommendations page, a customer's lists shown (script run): {percentiles(times)} ({n} customers)")


def refresh_time(runs: int = 3) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.servers import dagster_server, wait_until
    from tests.workspace import make_workspace

    work = Path(tempfile.mkdtemp(prefix="recomart-serving-"))
    try:
        ws = make_workspace(work / "ws", ROOT / "data")
        with dagster_server(work / "home", ws.env()) as server:
            os.environ.update({**ws.env(), "DAGSTER_PORT": str(server.port), "DAGSTER_HOST": "127.0.0.1"})
            for i in range(runs):
                at = AppTest.from_file(APP, default_timeout=60)
                at.run()
                at.switch_page("app_pages/refresh.py")
                at.run()
                start = time.perf_counter()
                at.button[0].click().run()

                def succeeded(at: AppTest = at) -> bool:
                    at.run()
                    return any("Run succeeded" in str(e.value) for e in at.success)

                wait_until(succeeded, 300, "the refresh succeeding", interval=0.5)
                print(
                    f"- Refresh {i + 1}: click to success shown {time.perf_counter() - start:.1f} s "
                    f"(complete_pipeline_job on the sample)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m", choices=["100k", "1m"])
    parser.add_argument("--skip-refresh", action="store_true")
    args = parser.parse_args()
    models = Path(tempfile.mkdtemp(prefix="recomart-models-"))
    try:
        tx, products = load(args.dataset)
        users = (
            tx[["user_id"]]
            .drop_duplicates()
            .assign(name=lambda f: "Customer " + f["user_id"], email=lambda f: "c" + f["user_id"] + "@example.com")
        )
        model = training.train_model(tx, products, users)
        model_store.publish(model, models, "bench")
        model_latency(models)
        page_time(models)
    finally:
        shutil.rmtree(models, ignore_errors=True)
    if not args.skip_refresh:
        refresh_time()


if __name__ == "__main__":
    main()
