"""The Recommendations and Model history pages at shop scale: the customer list, search, a customer's
lists, the summary of every customer's lists, and the served-vs-previous comparison.

Generator data (93,000 users, 10,000 products, 1M transactions); two kept versions with fixed settings
(the older one trained on the first 80% of the purchases, so it lacks customers the newer one knows);
every customer's lists stored as the pipeline stores them. Each figure is one AppTest script run of the
page (no browser), no Dagster webserver: the pages must not need one.

    python -m bench.customer_pages
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dagster_project import customer_lists, model_store
from dagster_project.model_card import ModelParams
from dagster_project.sample_data import generate

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app" / "app.py")
PARAMS = ModelParams(factors=32, shrinkage=1.0, weighting="log")
OLDER, NEWER = "20261101T000000Z-older", "20261102T000000Z-newer"


def build(work: Path, users: int, products: int, transactions: int) -> tuple[Path, Path]:
    """Data, two kept model versions and the stored lists under `work`; returns (models, storage)."""
    from tests.workspace import train_on

    data, models, storage = work / "data", work / "models", work / "storage"
    generate(data, users=users, products=products, transactions=transactions, seed=42)
    model_store.publish(train_on(data, PARAMS, share=0.8), models, OLDER)
    newer = train_on(data, PARAMS)
    model_store.publish(newer, models, NEWER)
    customer_lists.write_for_model(newer, storage)
    return models, storage


def page_times(models: Path, storage: Path) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ.update({"RECOMART_MODELS_DIR": str(models), "RECOMART_STORAGE_DIR": str(storage), "DAGSTER_PORT": "9"})
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()

    def timed(label: str, action: Callable[[], object]) -> None:
        start = time.perf_counter()
        action()
        print(f"- {label}: {(time.perf_counter() - start) * 1000:,.0f} ms")
        assert not at.exception, at.exception

    timed(
        "Recommendations, first open (model load, customer list, summary of every customer's lists)",
        lambda: at.switch_page("app_pages/recommendations.py").run(),
    )
    timed("Recommendations, next run (cached)", at.run)
    key = next(d.key for d in at.dataframe if (d.key or "").startswith("customer_list_"))

    def pick() -> None:
        at.session_state[key] = {"selection": {"rows": [3], "columns": []}}
        at.run()

    timed("a row picked: the customer's lists, history and similar products", pick)
    search = at.text_input(key="customer_query")
    timed("search 'garcia' (id, name and e-mail of every customer)", lambda: search.set_value("garcia").run())
    print(f"  ({next(c.value for c in at.caption if 'match' in c.value)})")
    timed(
        "Model history, first open (kept cards, the served vs previous top-10 on 2,000 customers)",
        lambda: at.switch_page("app_pages/model_history.py").run(),
    )
    timed("Model history, next run (cached)", at.run)
    timed(
        "older version chosen: figures side by side, what it lacks",
        lambda: at.selectbox(key="version_choice").set_value(OLDER).run(),
    )
    print(f"  ({at.warning[0].value})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=93_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recomart-customer-pages-"))
    try:
        start = time.perf_counter()
        models, storage = build(work, args.users, args.products, args.transactions)
        print(f"Set-up (data, two models, every customer's lists): {time.perf_counter() - start:.0f} s")
        page_times(models, storage)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
