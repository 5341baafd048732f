"""Two irregular lines whose flaws cancel out in a block's counts still take the line parser.

`pipeline.manifest.dense_columns` proves a block's rows share the first line's skeleton without
building the block's skeleton: it counts the block's quotes and control bytes and gathers the
bytes next to its commas and newlines. A count is blind to where its bytes are, so one line a
byte short and another a byte over add up to the right total. These blocks put such a pair among
plain rows — a field of one quote (shared by its two neighbours' checks) beside a field holding
an extra quote, a line without its CR beside one with a tab, a row a column short beside one a
column over, a bare row holding a quote or a bad bucket — and hold the batches to the
line-by-line reference (`test_manifest_dense_columns.py`: single irregular lines, properties).
"""

from __future__ import annotations

import io

import orjson
import pytest

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.parse import CsvKind, layout_from_names
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import as_tuple, flatten_batches

LIMIT = 120
HEADER = layout_from_names(["Bucket", "Key", "Size"], kind=CsvKind.HEADER, is_key_encoded=False)
SCHEMA = layout_from_names(["Bucket", "Key", "Size"], kind=CsvKind.SCHEMA, is_key_encoded=True)

QUOTED_PAIRS = [
    # one quote closes the key and opens the size / a size with a quote inside: 6 + 6 quotes
    (b'"bkt-1","k","', b'"bkt-1","k","1"x"'),
    (b'"bkt-1","k",",1"', b'"bkt-1","k"x","1"'),
    (b'"bkt-1",","k","1"', b'"bkt-1","k","1""'),
    # a row without the CR the others end with / a tab inside a field: 2n control bytes
    (b'"bkt-1","k","1"x', b'"bkt-1","k\tx","1"'),
    # a column short / a column over: as many commas
    (b'"bkt-1","k"', b'"bkt-1","k","1","x"'),
    (b'"bkt-1","k","1","x"', b'"bkt-1","k"'),
    # and no count at all: a bucket no rule allows, or none
    (b'"b!d","k","1"', b'"bkt-1","k","1"'),
    (b'"","k","1"', b'"bkt-1","k","1"'),
]
BARE_PAIRS = [
    (b"bkt-1,k,1x", b"bkt-1,k\tx,1"),
    (b"bkt-1,k", b"bkt-1,k,1,x"),
    (b'bkt-1,a"b,1', b"bkt-1,k,1"),
    (b'bkt-1,"k",1', b"bkt-1,k,1"),
    (b'bkt-1,k,"1"', b"bkt-1,k,1"),
    # and no count at all: a bucket no rule allows, or none, in a bare row
    (b"b!d,k,1", b"bkt-1,k,1"),
    (b",k,1", b"bkt-1,k,1"),
]
CASES = [
    (pair, quoted, eol, inventory)
    for quoted, pairs in ((True, QUOTED_PAIRS), (False, BARE_PAIRS))
    for pair in pairs
    for eol in (b"\n", b"\r\n")
    for inventory in (False, True)
]


class _LineByLine(RecordReader):
    """The reference path: the same reader with every dense check switched off."""

    def _shape(self, run):
        return None


def _read(reader_type: type[RecordReader], data: bytes, layout) -> RecordReader:
    return reader_type(io.BytesIO(data), ManifestFormat.CSV, layout=layout, max_line_bytes=LIMIT)


@pytest.mark.parametrize(
    ("pair", "quoted", "eol", "inventory"),
    CASES,
    ids=[f"{q:d}{i:d}-{p[0] + e + p[1]!r}"[:60] for p, q, e, i in CASES],
)
def test_two_lines_whose_counts_cancel_out_read_as_the_reference_says(pair, quoted, eol, inventory):
    # GIVEN plain rows (the first one's skeleton is the block's form) around two irregular
    # lines whose extra and missing bytes add up to the counts of two plain rows
    fmt = '"bkt-1","dir/k{}","{}"' if quoted else "bkt-1,dir/k{},{}"
    rows = [fmt.format(i, i).encode() for i in range(6)]
    data = eol.join([*rows[:3], pair[0], pair[1], *rows[3:]]) + eol
    if pair[0].endswith(b"x") and eol == b"\r\n":
        data = data.replace(pair[0] + b"\r\n", pair[0] + b"\n")  # the line without its CR
    layout = SCHEMA if inventory else HEADER
    # WHEN read as batches, all in one block
    batches = list(_read(RecordReader, data, layout).iter_batches())
    # THEN exactly the reference's records and failures, and sizes where a batch is dense
    assert flatten_batches(batches) == [as_tuple(i) for i in _read(_LineByLine, data, layout)]
    for batch in batches:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_the_plain_rows_around_the_pairs_alone_are_read_dense(quoted, eol):
    # the control: without the pair the same block is one dense batch (so the cases above
    # test the proof, not a block the dense check never takes)
    fmt = '"bkt-1","dir/k{}","{}"' if quoted else "bkt-1,dir/k{},{}"
    data = eol.join(fmt.format(i, i).encode() for i in range(6)) + eol
    batches = list(_read(RecordReader, data, HEADER).iter_batches())
    assert isinstance(batches[-1], DenseBatch)
    assert len(batches[-1]) == 5  # the first line is read before its bucket is known
