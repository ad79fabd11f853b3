"""What a business user may change before a refresh, checked before anything is sent to Dagster.

Only whitelisted jobs and these few knobs become run config: never free-form config, never a path
typed by a user. Defaults, limits and the checks themselves come from the pipeline's own config
classes (dagster_project.defs.run_config), so the app and Dagster can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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
