"""Refuse an object that is not a manifest before reading all of it.

A user who drops the wrong file (a TSV report, a log) into the input bucket should hear so at
once, not get a failure record for each of its perhaps billion lines; and Split could never
finish such a file, since a pass can only stop after a chunk. So when `NOT_A_MANIFEST_LINES`
lines have failed to parse before any line named an image, reading stops with a
`ManifestReadError` ("NotAManifest"): Split ends the run as partial with that reason, `scan`
exits 1 with it. Once one line has named an image, nothing more is counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.failures import ManifestReadError
from pipeline.manifest_batch import RecordBatch

NOT_A_MANIFEST_LINES = 10_000
"""Failed lines before any good one after which an object is taken not to be a manifest."""
NOT_A_MANIFEST = "NotAManifest"


def refusing_non_manifests(
    batches: Iterable[RecordBatch], *, limit: int = NOT_A_MANIFEST_LINES
) -> Iterator[RecordBatch]:
    """Pass `batches` on; raise once `limit` lines failed before any record.

    The batch that crosses the limit is still passed on (its failures are recorded); the error
    comes when the next one is asked for.

    Raises:
        ManifestReadError: error "NotAManifest", with the count in the message.
    """
    source = iter(batches)
    failed = 0
    for batch in source:
        yield batch
        if len(batch):
            yield from source
            return
        failed += len(batch.failures)
        if failed >= limit:
            raise ManifestReadError(
                f"none of the first {failed:,} lines that are not blank names an image (each "
                "failed to parse), so this is not a manifest of image keys; the rest was not read",
                error=NOT_A_MANIFEST,
            )
