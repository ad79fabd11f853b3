"""Model files: the served model plus the last few versions, written atomically.

`models/collaborative_filtering.pkl` is what the app serves; each training also keeps a copy under
`models/versions/` (newest `KEEP_VERSIONS`), so an earlier model can be put back. The served file is a
hard link to its version (fileio.atomic_link: one file under two names, nothing copied), which holds
because no model file is ever written in place: a new model is a new file renamed over the old name, and
pruning a version only removes its name.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from dagster_project.fileio import atomic_link
from dagster_project.recommender import ModelError, RecommenderModel, load_model, save_model
from dagster_project.settings import MODEL_FILENAME

KEEP_VERSIONS = 5
# The names publish() writes: a training time and a run id. Any other file is not a kept version, so a
# planted name can never push real versions out of the newest five.
VERSION_NAME = re.compile(r"collaborative_filtering-\d{8}T\d{6}Z-[0-9a-zA-Z_-]{1,40}\.pkl")


def versions_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "versions"


def list_versions(models_dir: Path) -> list[Path]:
    """Kept model versions, newest first (names sort by training time).

    Only regular files that really live in `versions/`: a symlink, or anything that resolves outside
    the folder, is never listed, so no roll-back, fallback or prune ever reads or deletes through it.
    """
    folder = versions_dir(models_dir)
    if not folder.is_dir() or folder.is_symlink():
        return []
    home = folder.resolve()
    return sorted(
        (
            p
            for p in folder.glob("collaborative_filtering-*.pkl")
            if VERSION_NAME.fullmatch(p.name) and not p.is_symlink() and p.is_file() and p.resolve().parent == home
        ),
        reverse=True,
    )


def publish(model: RecommenderModel, models_dir: Path, version: str) -> Path:
    """Write a new version, then atomically make it the served model; prune old versions."""
    models_dir = Path(models_dir)
    model.card = replace(model.card, version=version)
    versioned = save_model(model, versions_dir(models_dir) / f"collaborative_filtering-{version}.pkl")
    served = atomic_link(versioned, models_dir / MODEL_FILENAME)
    for old in [p for p in list_versions(models_dir) if p != versioned][KEEP_VERSIONS - 1 :]:
        old.unlink(missing_ok=True)
    return served


def roll_back(models_dir: Path, version_file: Path) -> Path:
    """Serve an earlier kept version (only files inside the models folder's versions/)."""
    if Path(version_file).resolve() not in {p.resolve() for p in list_versions(models_dir)}:
        raise ValueError(f"{Path(version_file).name} is not a kept model version in {versions_dir(models_dir)}")
    load_model(version_file)  # never serve a file that does not load
    served = atomic_link(version_file, Path(models_dir) / MODEL_FILENAME)
    os.utime(served)  # a new time (of the file both names share): whoever cached the served model reloads it
    return served


def version_name(path: Path) -> str:
    return Path(path).stem.removeprefix("collaborative_filtering-")


def newest_loadable(models_dir: Path) -> tuple[RecommenderModel, Path, list[str]]:
    """The served model, or else the newest kept version that loads; with the problems met on the way.

    Raises ModelError when nothing loads.
    """
    problems: list[str] = []
    for path in [Path(models_dir) / MODEL_FILENAME, *list_versions(models_dir)]:
        if not path.exists():
            continue
        try:
            return load_model(path), path, problems
        except ModelError as exc:
            problems.append(str(exc))
    raise ModelError(
        problems[0]
        if problems
        else f"No model at {Path(models_dir) / MODEL_FILENAME}: run the complete pipeline to train one."
    )
