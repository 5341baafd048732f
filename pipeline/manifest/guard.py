"""Refuse an object that is not a manifest before reading all of it.

A user who drops the wrong file (a TSV report, a log) into the input bucket should hear so at
once, not get a failure record for each of its perhaps billion lines; and Split could never
finish such a file, since a pass can only stop after a chunk. So when `NOT_A_MANIFEST_LINES`
lines have failed to parse (or a million lines, blank ones included) before any line named an
image, reading stops with a `ManifestReadError` ("NotAManifest"): Split ends the run as partial
with that reason, `scan` exits 1 with it. Once one line has named an image, nothing more is
counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.failures import ManifestReadError
from pipeline.manifest.batch import RecordBatch

NOT_A_MANIFEST_LINES = 10_000
"""Failed lines before any good one after which an object is taken not to be a manifest."""
NOT_A_MANIFEST_BLANK_LINES = 1_000_000
"""Lines of any kind (blank ones too) before any good one: a gzip of nothing but newlines (a
"blank-line bomb": 10 MB of it is 10 billion lines) is refused in a fraction of a second."""
NOT_A_MANIFEST = "NotAManifest"


def refusing_non_manifests(
    batches: Iterable[RecordBatch],
    *,
    limit: int = NOT_A_MANIFEST_LINES,
    blank_limit: int = NOT_A_MANIFEST_BLANK_LINES,
) -> Iterator[RecordBatch]:
    """Pass `batches` on; raise once too many lines came before any record.

    Too many: `limit` lines failed, or `blank_limit` lines of any kind were read.

    The batch that crosses a limit is still passed on (its failures are recorded); the error
    comes when the next one is asked for. Line numbers start at 1 (a first pass).

    Raises:
        ManifestReadError: error "NotAManifest", with the counts in the message.
    """
    source = iter(batches)
    failed = 0
    for batch in source:
        yield batch
        if len(batch):
            yield from source
            return
        failed += len(batch.failures)
        lines = batch.end_line - 1
        if failed >= limit or lines >= blank_limit:
            raise ManifestReadError(
                f"none of the first {lines:,} lines names an image ({failed:,} failed to parse, "
                "the rest are blank), so this is not a manifest of image keys; the rest was not "
                "read",
                error=NOT_A_MANIFEST,
            )


_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (4, b"1AY&SY", "a bzip2 archive"),
    (0, b"\x1f\x8b", "a gzip inside a gzip"),
    (257, b"ustar", "a tar archive"),
    (0, b"PAR1", "a Parquet file"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"\x7fELF", "an executable"),
)
"""Magic numbers of files people drop by mistake, with the words that name them."""


def refuse_binary(head: bytes) -> None:
    """Refuse a manifest whose first decompressed bytes are an image, an archive or binary data.

    Called on the first block (the bytes the format is sniffed from), so the wrong file ends the
    run at once, naming what it is, instead of after thousands of failed lines. A manifest is
    text: NUL bytes in a first block that is not UTF-8 are binary data (a key may hold a NUL,
    so UTF-8 text with one is read on; UTF-16 text is named as such: it needs saving as UTF-8).

    Raises:
        ManifestReadError: error "NotAManifest", saying what was found ("a JPEG image, not a
            manifest").
    """
    found = _container(head) or next(
        (name for at, magic, name in _MAGIC if head[at : at + len(magic)] == magic), None
    )
    if found is None and b"\x00" in head:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            found = "UTF-16 text (save it as UTF-8)"
        elif not _is_utf8(head):
            found = "binary data (NUL bytes)"
    if found is not None:
        raise ManifestReadError(f"{found}, not a manifest", error=NOT_A_MANIFEST)


def _container(head: bytes) -> str | None:
    """RIFF and ISO-media files: their magic is at offset 8 or 4, checked with what precedes it."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith(b"\x00\x00") and head[4:8] == b"ftyp":  # a box size, then the brand
        brand = head[8:12]
        if brand in {b"heic", b"heix", b"mif1", b"msf1"}:
            return "a HEIC image"
        return "an AVIF image" if brand in {b"avif", b"avis"} else "an MP4/MOV/HEIF media file"
    return None


def _is_utf8(head: bytes) -> bool:
    """Whether `head` is UTF-8, allowing a character cut at its end by the block boundary."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
