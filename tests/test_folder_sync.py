"""A purchase file's stored tables are published each atomically, and their folders made durable once
per block rather than once per file; outside such a block every write syncs its folder as before."""

from __future__ import annotations

import pandas as pd
import pytest

from dagster_project import fileio


@pytest.fixture
def folder_syncs(monkeypatch) -> list:
    """The folders fsynced, in order (the real fsync still runs)."""
    synced, real = [], fileio._fsync_dir

    def recording(folder):
        synced.append(folder)
        real(folder)

    monkeypatch.setattr(fileio, "_fsync_dir", recording)
    return synced


def test_writes_in_a_block_sync_each_folder_once_at_its_end(tmp_path, folder_syncs):
    frame = pd.DataFrame({"a": [1, 2]})
    raw, results = tmp_path / "raw", tmp_path / "results"
    with fileio.folders_synced_once():
        fileio.write_parquet(frame, raw / "f.parquet")
        fileio.write_parquet(frame, raw / "f.hashes.parquet")
        fileio.write_json({"ok": True}, results / "f.json")
        assert pd.read_parquet(raw / "f.parquet").equals(frame)  # published at once, each whole
        assert folder_syncs == [] and not fileio.own_temp_files(tmp_path)
    assert sorted(folder_syncs) == [raw, results]
    fileio.write_json({"done": True}, raw / "f.json")  # after the block: synced on its own, as always
    assert folder_syncs[-1] == raw and len(folder_syncs) == 3


def test_a_block_that_fails_still_syncs_what_it_wrote_and_writes_after_it_sync_again(tmp_path, folder_syncs):
    with pytest.raises(RuntimeError), fileio.folders_synced_once():
        fileio.write_json({"a": 1}, tmp_path / "a.json")
        raise RuntimeError("stopped")
    assert folder_syncs == [tmp_path]
    fileio.write_json({"b": 1}, tmp_path / "sub" / "b.json")
    assert folder_syncs == [tmp_path, tmp_path / "sub"]
