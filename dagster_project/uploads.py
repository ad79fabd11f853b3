"""Exports uploaded from the app: checked as a run would check them, then swapped into the data folder.

An upload is read by the pipeline's own readers (`ingest.read_file`) and judged by its own rules
(`validation.validate`), together with the data folder's current files for the tables not uploaded,
so the verdict shown is the one the next run would reach. Only an upload that a run would accept
(every file readable, quality score at or above the gate) reaches the data folder; the files of the
tables it replaces are moved to a dated folder `.replaced/<UTC time>/` beside them, from which they
can be put back. The readers and the file sensor look only at the data folder itself (their patterns
never descend into sub-folders), so kept files are never read as input.

Uploaded bytes are staged in a temporary folder that is removed when the check ends. No Dagster, no
Streamlit: the app's Refresh page and the tests call these functions.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dagster_project import data_files, file_formats, ingest, validation
from dagster_project.contract import ENTITIES, LIMITS, EntitySpec, InputLimits
from dagster_project.export_checks import DataInputError
from dagster_project.fileio import atomic_path, own_temp_files
from dagster_project.storage_lock import storage_lock

MAX_UPLOAD_ENV = "RECOMART_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 200  # .streamlit/config.toml's server.maxUploadSize says the same (a test checks)
REPLACED_FOLDER = ".replaced"
MANIFEST = "replaced.json"
KEEP_SETS = 5  # the newest kept sets; older ones are removed when a new one is made
STAMP = re.compile(r"\d{8}T\d{6}Z(?:-\d{1,3})?")
NAMES_HINT = "users….csv, products….json or transactions….csv (.csv.gz for a compressed CSV), e.g. users_november.csv"


def max_upload_mb(env: Mapping[str, str] = os.environ) -> int:
    """The largest file an operator may upload, in MB (RECOMART_MAX_UPLOAD_MB, default 200)."""
    value = (env.get(MAX_UPLOAD_ENV) or "").strip()
    if not value:
        return DEFAULT_MAX_UPLOAD_MB
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_UPLOAD_ENV} must be a whole number of megabytes (1 or more), not {value!r}.")
    return int(value)


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the browser sent and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class FileSummary:
    """What one uploaded file holds, as the pipeline reads it."""

    name: str
    table: str
    size: int
    rows: int | None = None
    columns: tuple[str, ...] = ()  # contract columns found
    missing: tuple[str, ...] = ()  # optional contract columns absent (the checks that need them are skipped)
    extra: tuple[str, ...] = ()  # other columns, carried along
    problem: str | None = None  # why it cannot be read


@dataclass(frozen=True)
class UploadCheck:
    """The verdict on an upload: what each file holds, what refuses it, and the rules' report."""

    files: tuple[FileSummary, ...]
    refusals: tuple[str, ...]
    report: validation.ValidationReport | None  # judged against the threshold; None when a table is unreadable
    replaces: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> current files it replaces
    unchanged: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> current files checked with it

    @property
    def accepted(self) -> bool:
        return not self.refusals and self.report is not None and bool(self.report.gate_passed)


@dataclass(frozen=True)
class KeptSet:
    """Files an upload (or a restore) replaced, kept in `.replaced/<name>/`."""

    name: str
    path: Path
    when: datetime
    tables: tuple[str, ...]
    files: tuple[tuple[str, int], ...]  # (file name, size in bytes)


@dataclass(frozen=True)
class Accepted:
    written: tuple[str, ...]
    kept: KeptSet


def table_for(name: str) -> EntitySpec | None:
    """The table a file name belongs to, by the pipeline's own patterns (case matters, as in the folder)."""
    return next((spec for spec in ENTITIES if any(fnmatch.fnmatchcase(name, p) for p in spec.patterns)), None)


def name_problem(name: str) -> str | None:
    """Why a name cannot go into the data folder (None when it can)."""
    plain = name if name.isprintable() and len(name) <= 200 else repr(name[:60])
    if (
        not name
        or name != Path(name).name
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or not name.isprintable()
        or len(name) > 200
    ):
        return f"{plain}: a file name must be a plain name such as users.csv (no folder, not starting with a dot)."
    if table_for(name) is None:
        return f"{plain}: RecoMart does not read a file of this name. Rename it {NAMES_HINT}."
    return None


def _clean(message: str, *folders: Path) -> str:
    """A reader's message with the server's folders left out: the user knows the file by its name."""
    for folder in folders:
        message = message.replace(f"{folder}{os.sep}", "").replace(str(folder), "the data folder")
    return message


@contextmanager
def staged(uploads: Sequence[Upload]) -> Iterator[Path]:
    """A temporary folder holding the uploads under their names; removed afterwards, whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="recomart-upload-"))
    try:
        for upload in uploads:
            if name_problem(upload.name) is None:
                (folder / upload.name).write_bytes(upload.data)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _summary(name: str, spec: EntitySpec, size: int, frame) -> FileSummary:
    own = [c for c in frame.columns if c not in (ingest.SOURCE_COLUMN, ingest.ROW_COLUMN)]
    return FileSummary(
        name,
        spec.name,
        size,
        len(frame),
        tuple(c for c in spec.columns if c in own),
        tuple(c for c in spec.optional if c not in own),
        tuple(c for c in own if c not in spec.columns),
    )


def _check_staged(
    uploads: Sequence[Upload],
    folder: Path,
    data_dir: Path,
    min_quality_score: float,
    limits: InputLimits,
    max_bytes: int | None,
) -> UploadCheck:
    refusals: list[str] = []
    summaries: list[FileSummary] = []
    by_table: dict[str, list[Upload]] = {}
    seen: set[str] = set()
    if not uploads:
        refusals.append("No file was uploaded: choose one or more exports.")
    for upload in uploads:
        problem = name_problem(upload.name)
        if problem is None and upload.name in seen:
            problem = f"{upload.name}: uploaded twice; upload each file once."
        if problem is None and max_bytes is not None and len(upload.data) > max_bytes:
            problem = (
                f"{upload.name}: {len(upload.data) / 1e6:,.1f} MB is over the upload limit of "
                f"{max_bytes / 1e6:,.0f} MB. Compress it (.csv.gz), or ask whoever runs RecoMart to place it in "
                f"the data folder."
            )
        if problem:
            refusals.append(problem)
            continue
        seen.add(upload.name)
        by_table.setdefault(table_for(upload.name).name, []).append(upload)

    frames: dict = {}
    replaces: dict[str, tuple[str, ...]] = {}
    unchanged: dict[str, tuple[str, ...]] = {}
    for spec in ENTITIES:
        current = tuple(p.name for p in data_files.matching(data_dir, spec)) if Path(data_dir).is_dir() else ()
        if spec.name in by_table:
            replaces[spec.name] = current
            parts = []
            for upload in sorted(by_table[spec.name], key=lambda u: u.name):  # the folder's order (sorted names)
                try:
                    frame = ingest.read_file(folder / upload.name, spec, limits)
                except DataInputError as exc:
                    message = _clean(str(exc), folder, data_dir)
                    refusals.append(message)
                    summaries.append(FileSummary(upload.name, spec.name, len(upload.data), problem=message))
                    continue
                summaries.append(_summary(upload.name, spec, len(upload.data), frame))
                parts.append(frame)
            if parts and len(parts) == len(by_table[spec.name]):
                frames[spec.name] = ingest.merge(parts)
        else:
            unchanged[spec.name] = current
            try:
                frames[spec.name] = ingest.read_entity(data_dir, spec, limits=limits)
            except DataInputError as exc:
                refusals.append(
                    f"The current {spec.name} files cannot be used with this upload: "
                    f"{_clean(str(exc), folder, data_dir)} Upload the {spec.name} export too."
                )
    report = None
    if len(frames) == len(ENTITIES):
        checked = validation.Frames(**frames, limits=limits)
        # judged as a run judges it: the whole data, and each purchase file on its own
        report = validation.validate(checked).judged(min_quality_score, validation.by_file(checked))
    return UploadCheck(tuple(summaries), tuple(refusals), report, replaces, unchanged)


def check(
    uploads: Sequence[Upload],
    data_dir: Path,
    min_quality_score: float,
    limits: InputLimits = LIMITS,
    max_bytes: int | None = None,
) -> UploadCheck:
    """Read and judge the uploads with the data folder's other tables; the folder is not touched."""
    with staged(uploads) as folder:
        return _check_staged(uploads, folder, Path(data_dir), min_quality_score, limits, max_bytes)


def accept(
    uploads: Sequence[Upload],
    data_dir: Path,
    min_quality_score: float,
    limits: InputLimits = LIMITS,
    max_bytes: int | None = None,
    now: datetime | None = None,
) -> tuple[UploadCheck, Accepted | None]:
    """Check the uploads again (the folder may have changed since they were shown) and, when a run would
    accept them, put them into the data folder; the files they replace go to a new kept set."""
    data_dir = Path(data_dir)
    with staged(uploads) as folder, _one_swap_at_a_time(data_dir):
        verdict = _check_staged(uploads, folder, data_dir, min_quality_score, limits, max_bytes)
        if not verdict.accepted:
            return verdict, None
        incoming = {
            table: [folder / n for n in sorted(u.name for u in uploads if table_for(u.name).name == table)]
            for table in verdict.replaces
        }
        return verdict, _swap_in(data_dir, incoming, now)


@contextmanager
def _one_swap_at_a_time(data_dir: Path) -> Iterator[None]:
    """Two operators accepting (or restoring) at once take turns; the check and the swap stay together.

    Holding the lock, the temporary files a killed swap left in the data folder are removed (the pipeline
    only reads the folder, so any there are an upload's).
    """
    # The lock lives outside the data folder, so a refused upload leaves that folder exactly as it was.
    key = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    with storage_lock(Path(tempfile.gettempdir()) / f"recomart-uploads-{key}", owner="an upload", timeout=120):
        for stale in own_temp_files(data_dir, recursive=False):
            stale.unlink(missing_ok=True)
        yield


def _replaced_root(data_dir: Path) -> Path:
    return Path(data_dir) / REPLACED_FOLDER


def _new_set_folder(data_dir: Path, now: datetime | None) -> Path:
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = _replaced_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise OSError(f"Too many kept sets named {stamp} in {root}.")


def _swap_in(data_dir: Path, incoming: Mapping[str, Sequence[Path]], now: datetime | None) -> Accepted:
    """Put `incoming` files (per table) in the data folder; every current file of those tables is kept.

    Order keeps the folder whole at every moment: same-named files are copied to the kept set before being
    replaced atomically, and the other old files move out only after the new ones are in. On an error the
    folder is put back as it was.
    """
    kept_dir = _new_set_folder(data_dir, now)
    specs = {spec.name: spec for spec in ENTITIES}
    new_names = {p.name for paths in incoming.values() for p in paths}
    old = [p for table in incoming for p in data_files.matching(data_dir, specs[table])]
    (kept_dir / MANIFEST).write_text(json.dumps({"tables": sorted(incoming), "written": sorted(new_names)}) + "\n")
    written: list[Path] = []
    moved: list[Path] = []
    try:
        for path in old:
            if path.name in new_names:
                shutil.copy2(path, kept_dir / path.name, follow_symlinks=False)
        for paths in incoming.values():
            for source in paths:
                target = data_dir / source.name
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
                written.append(target)
        for path in old:
            if path.name not in new_names:
                os.replace(path, kept_dir / path.name)
                moved.append(path)
    except OSError as exc:
        for path in moved:  # put the folder back as it was
            with suppress(OSError):
                os.replace(kept_dir / path.name, path)
        for target in written:
            with suppress(OSError):
                if (kept_dir / target.name).exists():
                    os.replace(kept_dir / target.name, target)
                else:
                    target.unlink()
        shutil.rmtree(kept_dir, ignore_errors=True)
        raise OSError(
            f"The files could not be written into the data folder {data_dir} ({exc.strerror or exc}); it "
            f"was left as it was. Free some space or check its permissions, then try again."
        ) from exc
    _prune(data_dir)
    return Accepted(tuple(sorted(new_names)), _kept_set(kept_dir))


def _kept_set(folder: Path) -> KeptSet:
    try:
        tables = tuple(json.loads((folder / MANIFEST).read_text()).get("tables", []))
    except (OSError, ValueError):
        tables = ()
    files = tuple(
        (p.name, p.lstat().st_size)
        for p in sorted(folder.iterdir())
        if p.name != MANIFEST and p.is_file() and not p.is_symlink() and table_for(p.name) is not None
    )
    name = folder.name
    when = datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    tables = tables or tuple(sorted({table_for(n).name for n, _ in files}))
    return KeptSet(name, folder, when, tables, files)


def kept_sets(data_dir: Path) -> list[KeptSet]:
    """The kept sets, newest first (only real folders named by their time)."""
    root = _replaced_root(data_dir)
    if not root.is_dir() or root.is_symlink():
        return []
    found = [p for p in root.iterdir() if STAMP.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    return sorted((_kept_set(p) for p in found), key=lambda k: (k.when, len(k.name), k.name), reverse=True)


def _prune(data_dir: Path, keep: int = KEEP_SETS) -> None:
    for old in kept_sets(data_dir)[keep:]:
        shutil.rmtree(old.path, ignore_errors=True)


def restore(data_dir: Path, name: str, now: datetime | None = None) -> Accepted:
    """Put a kept set's files back; the files they replace become a new kept set (so a restore can be undone)."""
    data_dir = Path(data_dir)
    with _one_swap_at_a_time(data_dir):
        chosen = next((k for k in kept_sets(data_dir) if k.name == name), None)
        if chosen is None:
            raise ValueError(f"No kept set named {name!r} in {REPLACED_FOLDER}.")
        incoming: dict[str, list[Path]] = {table: [] for table in chosen.tables}
        for file_name, _ in chosen.files:
            incoming.setdefault(table_for(file_name).name, []).append(chosen.path / file_name)
        done = _swap_in(data_dir, incoming, now)
        shutil.rmtree(chosen.path, ignore_errors=True)
        return done


# --- the files a refresh will read --------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    name: str
    table: str
    path: Path
    size: int
    modified: float  # epoch seconds
    mtime_ns: int


def export_files(data_dir: Path) -> list[ExportFile]:
    """The files in the data folder a run would read, per table in the readers' order."""
    found = []
    if not Path(data_dir).is_dir():
        return found
    for spec in ENTITIES:
        for path in data_files.matching(data_dir, spec):
            target = data_files.resolve_inside(data_dir, path)
            if target is None or not target.is_file():
                continue
            stat = target.stat()
            found.append(ExportFile(path.name, spec.name, target, stat.st_size, stat.st_mtime, stat.st_mtime_ns))
    return found


def count_rows(path: Path) -> int | None:
    """Rows of an export, cheaply: data lines of a CSV (blank lines not counted), objects of a JSON export.

    A CSV field that holds a line break counts as two lines here; the run's own count is exact.
    None when the file cannot be read.
    """
    spec = table_for(Path(path).name)
    try:
        if spec is None:
            return None
        if spec.file_format == "JSON":
            return len(ingest.read_file(Path(path), spec))
        with open(path, "rb") as raw:
            kind = file_formats.compression(raw.read(16))
            raw.seek(0)
            with file_formats.open_decompressed(raw, kind) as stream:
                lines = sum(1 for line in stream if line.strip())
        return max(lines - 1, 0)
    except (DataInputError, OSError, EOFError, ValueError, *file_formats.DECOMPRESSION_ERRORS):
        return None
