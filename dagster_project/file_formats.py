"""What kind of file an export really is: compressed or not, which text encoding, or not text at all.

Users rename files (`export.xlsx` -> `transactions.csv`) and compress them. Gzip, bzip2 and xz
exports are read as they are, whatever their name, and `users*.csv.gz` matches like `users*.csv`. Any
other known binary format (Excel, zip, Parquet, PDF...) is refused by name with what to do, before a
parser sees it and fails with a message that says nothing useful (or quotes the file's bytes).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import BinaryIO

COMPRESSED = {"gzip": (b"\x1f\x8b",), "bz2": (b"BZh",), "xz": (b"\xfd7zXZ\x00",)}
# Errors a damaged compressed stream raises while it is read (BadGzipFile is an OSError).
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)

REFUSED = (  # signature, what the file is
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls) or another Office file"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


class NotAnExport(ValueError):
    """Bytes that are not a text export; the message says what they look like (never quotes them)."""


class ExpandsTooMuch(OSError):
    """A compressed file that unpacks to far more than any export (a decompression bomb, or damage)."""


# Exports compress 5-20x; a file that expands more than EXPANSION_LIMIT times, past MIN_BOUND bytes,
# is refused before it fills the memory.
EXPANSION_LIMIT = 200
MIN_BOUND = 256 * 1024 * 1024


class _Bounded(io.RawIOBase):
    """A decompressing stream that refuses to yield more than `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream, self._limit, self._read = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self._read += len(data)
        if self._read > self._limit:
            raise ExpandsTooMuch(f"unpacks to more than {self._limit:,} bytes")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def compression(head: bytes) -> str | None:
    """'gzip', 'bz2' or 'xz' when the file starts with that format's signature."""
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "bz2"
    return next(
        (name for name, signatures in COMPRESSED.items() if name != "bz2" and head.startswith(signatures)), None
    )


def refuse_binary(head: bytes) -> None:
    """Raise NotAnExport for known binary formats (after any decompression)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"[Content_Types].xml" in head or b"xl/" in head:
            raise NotAnExport("an Excel workbook (.xlsx)")
        if b"opendocument.spreadsheet" in head:
            raise NotAnExport("an OpenDocument spreadsheet (.ods)")
        raise NotAnExport("a zip archive")
    for signature, what in REFUSED:
        if head.startswith(signature):
            raise NotAnExport(what)
    if compression(head):
        raise NotAnExport("a compressed file inside a compressed file")


def open_decompressed(raw: BinaryIO, kind: str | None) -> BinaryIO:
    """A binary stream of the file's content, decompressed on the fly when `kind` names a compression.

    A compressed stream is bounded: past EXPANSION_LIMIT times the file's size (and MIN_BOUND) reading
    raises `ExpandsTooMuch`.
    """
    if kind is None:
        return raw
    opener = {
        "gzip": lambda: gzip.GzipFile(fileobj=raw, mode="rb"),
        "bz2": lambda: bz2.BZ2File(raw, mode="rb"),
        "xz": lambda: lzma.LZMAFile(raw, mode="rb"),  # noqa: SIM115 - closed with the stream returned
    }[kind]
    size = raw.seek(0, io.SEEK_END)
    raw.seek(0)
    return io.BufferedReader(_Bounded(opener(), max(MIN_BOUND, EXPANSION_LIMIT * size)))


def encoding(head: bytes) -> str:
    """The text encoding: UTF-16/32 by their byte-order mark, else UTF-8 (BOM allowed), else Windows-1252.

    Only the head is looked at; a later byte the choice cannot decode makes the reader fall back to
    `decode`, which tries the candidates on the whole file.
    """
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError as exc:  # a character cut off at the end of the head is still UTF-8
        return "utf-8-sig" if exc.start > len(head) - 4 and exc.reason == "unexpected end of data" else "cp1252"


def decode(raw: bytes) -> str:
    """The whole file as text: its byte-order mark's encoding, else UTF-8, Windows-1252 or Latin-1."""
    first = encoding(raw[:4])
    candidates = (first,) if first.startswith(("utf-16", "utf-32")) else ()
    for name in (*candidates, "utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte string")


def is_binary(text: str) -> bool:
    """NUL characters never occur in a text export: the file is binary (or UTF-16 without its BOM)."""
    return "\x00" in text
