"""Split's resumable passes over CSV records that span lines: no checkpoint inside a record.

Many tiny passes (each resumes at the previous checkpoint, through the zran seek-point index)
must send exactly the chunks one pass sends, and every record whole, with its newline.
"""

from __future__ import annotations

import csv
import gzip
import io
import random

import orjson
import pytest

from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.chunking import Chunk
from pipeline.split.passes import SplitOptions
from tests.split_chain import SMALL_KNOBS, run_chain


def _rows(n: int) -> list[tuple[str, str]]:
    rng = random.Random(5)
    rows = []
    for i in range(n):
        noise = rng.randrange(10**12)
        key = f"k{i}-{noise}\nline two.jpg" if rng.random() < 0.3 else f"k{i}-{noise}.jpg"
        rows.append(("bkt", key))
    return rows


def _write(tmp_path, rows, *, is_gzip: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["bucket", "key"])
    writer.writerows(rows)
    data = out.getvalue().encode()
    path = tmp_path / ("m.csv.gz" if is_gzip else "m.csv")
    path.write_bytes(gzip.compress(data) if is_gzip else data)
    return str(path)


@pytest.mark.parametrize("is_gzip", [True, False], ids=["gzip", "plain"])
def test_tiny_passes_never_cut_a_multi_line_record(tmp_path, is_gzip):
    # GIVEN 20,000 records, 30 % of them with a newline in their quoted key
    rows = _rows(20_000)
    source = _write(tmp_path, rows, is_gzip=is_gzip)
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN split in one pass, and in passes of one chunk each
    one = run_chain(source, LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    tiny = SplitOptions(97, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(source, LocalFileReader, store, tiny)
    # THEN the chunks are the same, and every record arrived whole, once, in order
    assert len(many.outcomes) == len(one.chunks) > 100
    assert many.chunks == one.chunks
    sent = [
        (record.bucket, record.key)
        for message in sorted({m.number: m for m in many.sent}.values(), key=lambda m: m.number)
        for record in Chunk.from_message(orjson.loads(message.body)).items
    ]
    assert sent == rows
    assert many.failures.parts == {}
    assert many.outcomes[-1].records == len(rows)
