"""Where RecoMart reads and writes: run config beats environment variables beats the defaults.

Defaults are the project's own `data/`, `storage/` and `models/` folders, wherever the process runs.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILENAME = "collaborative_filtering.pkl"

_FOLDERS = {"data": "RECOMART_DATA_DIR", "storage": "RECOMART_STORAGE_DIR", "models": "RECOMART_MODELS_DIR"}


def folder(kind: str, explicit: str | os.PathLike | None = None) -> Path:
    """The absolute folder for `kind` ('data', 'storage' or 'models')."""
    value = explicit or os.environ.get(_FOLDERS[kind]) or PROJECT_ROOT / kind
    return Path(value).expanduser().resolve()


def model_path(models_dir: str | os.PathLike | None = None) -> Path:
    return folder("models", models_dir) / MODEL_FILENAME
