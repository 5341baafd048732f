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
