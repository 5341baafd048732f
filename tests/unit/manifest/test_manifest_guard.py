"""The not-a-manifest guard, on hand-made batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.guard import refusing_non_manifests


@dataclass
class Batch:
    """Just what the guard reads of a `RecordBatch`: its records' count and its failures."""

    records: int
    failures: list[ManifestLineError] = field(default_factory=list)
    end_line: int = 1

    def __len__(self) -> int:
        return self.records


def _numbered(batches: list[Batch], blanks: int = 0) -> list[Batch]:
    """Give each batch its `end_line`, as if each held its records, failures and `blanks`."""
    line = 1
    for batch in batches:
        line += batch.records + len(batch.failures) + blanks
        batch.end_line = line
    return batches


def _bad(n: int) -> Batch:
    return Batch(0, [ManifestLineError("bad", line=i) for i in range(n)])


def test_the_batch_crossing_the_limit_is_passed_on_then_reading_stops():
    batches = _numbered([_bad(6), _bad(6), _bad(6)])
    passed = []
    with pytest.raises(ManifestReadError) as caught:
        passed.extend(refusing_non_manifests(iter(batches), limit=10))
    assert passed == batches[:2]
    assert caught.value.error == "NotAManifest"
    assert "first 12 lines" in caught.value.message


def test_once_a_line_names_an_image_nothing_more_is_counted():
    batches = _numbered([_bad(9), Batch(1), _bad(100), Batch(0), _bad(100)])
    assert list(refusing_non_manifests(iter(batches), limit=10)) == batches


def test_blank_lines_count_only_toward_the_blank_limit():
    # GIVEN batches of 30 blank lines each (and 3 bad lines): 93 lines before the records
    batches = _numbered([Batch(0), _bad(3), Batch(0), Batch(2)], blanks=30)
    # THEN they pass a failure limit of 4 with a blank limit above 93
    assert list(refusing_non_manifests(batches, limit=4, blank_limit=100)) == batches
    # AND a blank limit under it stops the reading after the batch that crosses it
    with pytest.raises(ManifestReadError, match="first 63 lines"):
        list(refusing_non_manifests(batches, limit=4, blank_limit=50))
