"""The project is one installable package described by pyproject.toml; the lock files agree with it."""

import re
import subprocess
import sys
import tomllib

from tests.workspace import ROOT


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            found[name] = line.replace(" ", "")
    return found


def test_requirements_files_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pins((ROOT / "requirements.txt").read_text().splitlines()) == pins(project["dependencies"])
    dev = pins((ROOT / "requirements-dev.txt").read_text().splitlines())
    assert dev == pins(project["optional-dependencies"]["dev"])
    bench = pins((ROOT / "requirements-bench.txt").read_text().splitlines())
    assert bench == pins(project["optional-dependencies"]["bench"])


def test_packages_import_from_any_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import dagster_project.definitions, streamlit_app.dagster_api"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_file_edits_the_import_path():
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "tests", "build") or "site-packages" in relative.parts:
            continue
        if "sys.path" in path.read_text():
            offenders.append(str(relative))
    for name in ("run_pipeline.sh", "run_pipeline.bat", "Procfile", "deploy/docker/Dockerfile"):
        if "PYTHONPATH" in (ROOT / name).read_text():
            offenders.append(name)
    assert offenders == []
