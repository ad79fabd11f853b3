"""What a business user may change before a refresh, checked before anything is sent to Dagster.

Only whitelisted jobs and these few validated knobs become run config: never free-form config,
never a path typed by a user.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster_project.validation import DEFAULT_MIN_QUALITY_SCORE
from streamlit_app.dagster_api import JOBS


@dataclass(frozen=True)
class RefreshOptions:
    min_quality_score: float = DEFAULT_MIN_QUALITY_SCORE
    test_share: float = 0.2
    auto_tune: bool = True

    def problems(self) -> list[str]:
        found = []
        if not 0.0 <= self.min_quality_score <= 100.0:
            found.append("The quality threshold must be between 0 and 100.")
        if not 0.05 <= self.test_share <= 0.5:
            found.append("The share of data held out for measuring must be between 5% and 50%.")
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
    return {"ops": {
        "validation_report": {"config": {"min_quality_score": float(options.min_quality_score)}},
        "collaborative_filtering_model": {"config": {"test_share": float(options.test_share),
                                                     "auto_tune": bool(options.auto_tune)}},
    }}


def run_tags(user: str | None = None) -> dict[str, str]:
    return {"recomart/launched_by": "app", "recomart/user": user or "anonymous"}
