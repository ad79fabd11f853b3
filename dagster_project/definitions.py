"""The RecoMart code location: `dagster dev` (pyproject) or `-m dagster_project.definitions`.

Everything in defs/ is loaded by Dagster's folder convention ([tool.dg.project] in pyproject.toml):
a new module there is picked up without an edit here.
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
