"""What a business user may change before a refresh, checked before anything is sent to Dagster.

Only whitelisted jobs and these few knobs become run config: never free-form config, never a path
typed by a user. Defaults, limits and the checks themselves come from the pipeline's own config
classes (dagster_project.defs.run_config), so the app and Dagster can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from dagster_project import transaction_files
from dagster_project.defs.run_config import ModelConfig, ValidationConfig, config_problems, default, field_range
from streamlit_app.dagster_api import JOBS

# knob -> (asset whose config holds it, its config class, the words a user reads, shown as a percentage?)
KNOBS = {
    "min_quality_score": ("validation_report", ValidationConfig, "The quality threshold", False),
    "test_share": ("collaborative_filtering_model", ModelConfig, "The share of data held out for measuring", True),
    "auto_tune": ("collaborative_filtering_model", ModelConfig, "Automatic tuning", False),
    "min_coverage": ("collaborative_filtering_model", ModelConfig, "Variety", True),
}


def limits(knob: str) -> tuple[float, float]:
    """The knob's (minimum, maximum), as the pipeline defines them."""
    _, config_class, _, _ = KNOBS[knob]
    low, high = field_range(config_class, knob)
    return float(low), float(high)


@dataclass(frozen=True)
class RefreshOptions:
    min_quality_score: float = default(ValidationConfig, "min_quality_score")
    test_share: float = default(ModelConfig, "test_share")
    auto_tune: bool = default(ModelConfig, "auto_tune")
    min_coverage: float = default(ModelConfig, "min_coverage")

    def ops_config(self) -> dict:
        ops: dict = {}
        for knob in fields(self):
            op = KNOBS[knob.name][0]
            ops.setdefault(op, {"config": {}})["config"][knob.name] = getattr(self, knob.name)
        return {"ops": ops}

    def problems(self) -> list[str]:
        """What is out of range, in the user's words (checked by the pipeline's own config classes)."""
        found = []
        for problem in config_problems(self.ops_config()):
            knob = problem.split(":", 1)[0].split(".")[1]
            _, _, words, percent = KNOBS[knob]
            if knob == "auto_tune":
                found.append(f"{words} must be on or off.")
                continue
            low, high = limits(knob)
            shown = f"{low:.0%} and {high:.0%}" if percent else f"{low:g} and {high:g}"
            found.append(f"{words} must be between {shown}.")
        return found


def build_run_config(job_name: str, options: RefreshOptions) -> dict:
    """Run config for a whitelisted job; raises ValueError with the user's words for anything else."""
    if job_name not in JOBS:
        raise ValueError(f"Unknown job {job_name!r}.")
    problems = options.problems()
    if problems:
        raise ValueError(" ".join(problems))
    if job_name == "ingestion_job":
        return {}
    return options.ops_config()


def run_tags(user: str | None = None) -> dict[str, str]:
    return {"recomart/launched_by": "app", "recomart/user": user or "anonymous"}


REFRESH_KIND_TAG = transaction_files.REFRESH_KIND_TAG  # the same tag the sensor and the schedule put on their runs
# The two kinds of refresh, in the words the Refresh page shows (label, what it reads).
REFRESH_KINDS = {
    transaction_files.NEW_DATA: (
        "New data only",
        "reads the purchase files that are new or changed since the last refresh; customers and products are "
        "read again only when their files changed. When the new files only add later purchases, the model adds "
        "them to the customers' histories and only those customers' lists are made again; it trains again in "
        "full every third day, after much new data, or when an older file changed",
    ),
    transaction_files.EVERYTHING: (
        "Everything",
        "reads and checks every purchase file again, then trains the model on all of them",
    ),
}
KIND_HELP = (
    "Each purchase file is kept as its own part of the history (a Dagster partition). New data only reads "
    "the new and changed files and the files named after them; after a change to the customers or products "
    "it reads every file, and files that left the data folder are dropped. Both end with the same data; "
    "everything simply reads all files again and trains the model in full, where new data only adds the new "
    "purchases to the model's customers (their recommendations change; the model's learnt part stays until its "
    "next full training, every third day)."
)


@dataclass(frozen=True)
class FilesRequest:
    """What a refresh sends with its run: the partitions to add and drop, its range tags, and its assets."""

    plan: transaction_files.Plan
    tags: dict[str, str]
    assets: list[str] | None  # None: the whole job

    def words(self) -> str:
        return self.plan.describe()


def files_request(job: str, kind: str, files: dict[str, str], stored: dict[str, str], keys: list[str]) -> FilesRequest:
    """The run for `kind` over the data folder's purchase files (raises FileNameError naming a bad name)."""
    plan = transaction_files.plan(files, stored, keys, kind)
    tags = {REFRESH_KIND_TAG: kind, **plan.tags()}
    assets = None if plan.reads_files else list(transaction_files.WHOLE_DATA_ASSETS[job])
    return FilesRequest(plan, tags, assets)
