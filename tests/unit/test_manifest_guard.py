"""The not-a-manifest guard, on hand-made batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest_guard import refusing_non_manifests


@dataclass
class Batch:
    """Just what the guard reads of a `RecordBatch`: its records' count and its failures."""

    records: int
    failures: list[ManifestLineError] = field(default_factory=list)

    def __len__(self) -> int:
        return self.records


def _bad(n: int) -> Batch:
    return Batch(0, [ManifestLineError("bad", line=i) for i in range(n)])


def test_the_batch_crossing_the_limit_is_passed_on_then_reading_stops():
    batches = [_bad(6), _bad(6), _bad(6)]
    passed = []
    with pytest.raises(ManifestReadError) as caught:
        passed.extend(refusing_non_manifests(iter(batches), limit=10))
    assert passed == batches[:2]
    assert caught.value.error == "NotAManifest"
    assert "first 12 lines" in caught.value.message


def test_once_a_line_names_an_image_nothing_more_is_counted():
    batches = [_bad(9), Batch(1), _bad(100), Batch(0), _bad(100)]
    assert list(refusing_non_manifests(iter(batches), limit=10)) == batches


def test_batches_of_blank_lines_only_count_nothing():
    batches = [Batch(0), Batch(0), _bad(3), Batch(2)]
    assert list(refusing_non_manifests(batches, limit=3 + 1)) == batches
