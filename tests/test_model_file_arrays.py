"""A model file's arrays are taken from their bytes exactly as their headers describe them: plain numbers of
the stated size, in C or Fortran order, writable; any other header or size is refused with a ModelFileError."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from dagster_project import model_file


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def archive(tmp_path, raw: bytes) -> zipfile.ZipFile:
    path = tmp_path / "member.zip"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("x.npy", raw)
    return zipfile.ZipFile(path)


@pytest.mark.parametrize(
    "array",
    [np.arange(7, dtype=np.int32), np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.zeros((0, 5)), np.array(2.5)],
)
def test_stored_arrays_come_back_equal_and_writable(tmp_path, array):
    found = model_file._array(archive(tmp_path, npy(array)), "x")
    assert found.dtype == array.dtype and found.shape == array.shape and found.flags.writeable
    np.testing.assert_array_equal(found, array)


def test_headers_that_do_not_match_the_bytes_are_refused(tmp_path):
    plain = npy(np.arange(4.0))
    cases = {
        "shape past any size": plain.replace(b"(4,)", b"(4611686018427387905,)"),
        "negative shape": plain.replace(b"(4,)", b"(-4,)"),
        "fewer bytes than the shape": plain[:-8],
        "more bytes than the shape": plain + b"\0" * 8,
        "records, not numbers": npy(np.zeros(2, dtype=[("a", "f8")])),
        "objects": npy(np.array(["x"], dtype=object)),
        "not an array": b"PK\x03\x04 not numpy",
    }
    for case, raw in cases.items():
        with pytest.raises(model_file.ModelFileError, match="array 'x'") as refused:
            model_file._array(archive(tmp_path, raw), "x")
        assert "not numpy" not in str(refused.value), case  # nothing of the file is quoted
