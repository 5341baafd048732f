"""JSON Lines in every record form and spelling are dense exactly when the definition says so.

`pipeline.manifest.dense_json` proves blocks of `{"bucket":"B","key":"K"}`,
`{"key":"K","bucket":"B"}` and `{"uri":"s3://B/K"}` records plain from frame pieces gathered
at the line starts and ends plus whole-block counts, in the compact spelling (orjson, pandas)
and in Python `json.dumps`'s (a space after each `:` and `,`). Held here, both ways, to a
regular expression written from the definition — every line exactly the record in the
block's spelling, B one of the known buckets, K one or more bytes that are not `"`, backslash,
a control byte or DEL, the whole UTF-8 — on plain records mixed with near misses (other
spellings included); accepted blocks give the reference parser's records and item sizes, and
their chunks read back to exactly those records.
"""

from __future__ import annotations

import io
import json
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_json import dense_jsonl_lines, dense_jsonl_uri_lines
from pipeline.manifest.json_spelling import COMPACT, SPACED, JsonSpelling, spelling_of
from pipeline.manifest.reader import ManifestFormat, ManifestRecord, RecordReader
from tests.unit.manifest.test_dense_json import (
    BUCKETS,
    KEY_BYTES,
    SPECIAL,
    _is_utf8,
    _mutate,
    _reference,
    key,
    plain_key,
)
from tests.unit.manifest_helpers import (
    as_tuple,
    assert_spans_are_the_chunks,
    flatten_batches,
    share_sent_as,
)

PROPS = settings(max_examples=300, deadline=None)
ORDERS = ["bucket", "key", "uri"]
SPELLINGS = {"compact": (b":", b","), "spaced": (b": ", b", "), "pandas": (b":", b",")}
r"""pandas `to_json(orient="records", lines=True)`: compact, every `/` of a key written `\/`."""


def _record(order: str, spelling: str, bucket: bytes, k: bytes) -> bytes:
    colon, comma = SPELLINGS[spelling]
    if spelling == "pandas":
        k = k.replace(b"/", b"\\/")
    if order == "uri":
        return b'{"uri"%b"s3://%b/%b"}' % (colon, bucket, k)
    if order == "key":
        return b'{"key"%b"%b"%b"bucket"%b"%b"}' % (colon, k, comma, colon, bucket)
    return b'{"bucket"%b"%b"%b"key"%b"%b"}' % (colon, bucket, comma, colon, k)


def _check(order: str, block: bytes, shape: DenseShape, spelling: JsonSpelling):
    if order == "uri":
        return dense_jsonl_uri_lines(block, shape, spelling)
    return dense_jsonl_lines(block, shape, key_first=order == "key", spelling=spelling)


@st.composite
def records(draw, order: str, spelling: str, known: list[bytes]) -> list[bytes]:
    """Plain records of known buckets, mostly with one defect somewhere."""
    n = draw(st.integers(1, 10))
    fields = [(draw(st.sampled_from(known)), draw(plain_key)) for _ in range(n)]
    out = [_record(order, spelling, b, k) for b, k in fields]
    i, defect = draw(st.integers(0, n - 1)), draw(st.integers(0, 6))
    bucket, k = fields[i]
    if defect in (1, 6):  # one more byte in a key: one JSON treats specially, or any
        at, more = draw(st.integers(0, len(k))), draw(SPECIAL if defect == 1 else KEY_BYTES)
        out[i] = _record(order, spelling, bucket, k[:at] + more + k[at:])
    elif defect == 2:
        out[i] = _record(order, spelling, bucket, draw(st.just(b"") | key))
    elif defect == 3:
        at, how = draw(st.integers(0, 200)), draw(st.integers(0, 3))
        out[i] = _mutate(out[i], at, how, draw(KEY_BYTES))
    elif defect == 4:
        other = draw(st.sampled_from([*BUCKETS, b"bk9", b"b", b""]))
        out[i] = draw(
            st.sampled_from(
                [
                    _record(order, spelling, other, k),
                    _record(draw(st.sampled_from(ORDERS)), "compact", bucket, k),
                    _record(draw(st.sampled_from(ORDERS)), "spaced", bucket, k),
                    b'{"uri":"s3:/%b/%b"}' % (bucket, k),
                    b'{"uri":"s3://%b"}' % bucket,
                    b'{"bucket":"%b","key":"%b","version_id":"v"}' % (bucket, k),
                    b'{"bucket" : "%b" , "key" : "%b"}' % (bucket, k),
                ]
            )
        )
    elif defect == 5:
        for j in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            out[j] = _record(order, spelling, draw(st.sampled_from(BUCKETS)), draw(key))
    return out


def _plain_re(
    order: str, spelling: str, buckets: list[bytes], eol: bytes = b"\n"
) -> re.Pattern[bytes]:
    bucket = b"(?:" + b"|".join(map(re.escape, buckets)) + b")"
    k = b'(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\/)+'  # `\/` too: pandas writes every `/` so
    one = re.escape(_record(order, spelling, b"\0B\0", b"\0K\0"))
    one = one.replace(re.escape(b"\0B\0"), bucket).replace(re.escape(b"\0K\0"), k)
    return re.compile(b"(?:" + one + re.escape(eol) + b")+")


@PROPS
@given(
    data=st.data(),
    order=st.sampled_from(ORDERS),
    spelling=st.sampled_from(list(SPELLINGS)),
    known=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=5, unique=True),
    eol=st.sampled_from([b"\n", b"\r\n"]),
)
def test_blocks_are_dense_exactly_when_every_line_is_plain_in_the_spelling(
    data, order, spelling, known, eol
):
    # GIVEN lines ended by a newline or CRLF: plain records, near misses, other forms and
    # spellings
    lines = [line.replace(b"\n", b"") for line in data.draw(records(order, spelling, known))]
    block = b"".join(line + eol for line in lines)
    # WHEN the block is offered to the dense check of its form and spelling
    frames = SPACED if spelling == "spaced" else COMPACT
    batch = _check(order, block, DenseShape(7, 100, known, 10_000), frames)
    # THEN it is taken exactly when the definition calls every line plain
    pattern = _plain_re(order, spelling, known, eol)
    plain = pattern.fullmatch(block) is not None and _is_utf8(block)
    assert (batch is not None) == plain
    if batch is not None:  # and then its records and item sizes are the reference's
        assert batch.records(0, len(batch)) == _reference(lines, 7)
        assert batch.resume_after(len(lines) - 1) == (7 + len(lines), 100 + len(block))
        items = batch.items(0, len(batch))
        assert batch.item_sizes(0, len(batch)) == [len(orjson.dumps(i)) for i in items]


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(plain_key, min_size=1, max_size=300),
    order=st.sampled_from(ORDERS),
    spelling=st.sampled_from(list(SPELLINGS)),
    buckets=st.sampled_from([[b"bk"], [b"bk", b"bk.b", b"bk-b"]]),
    chunk_items=st.integers(1, 40),
    block=st.integers(64, 2048),
    eol=st.sampled_from([b"\n", b"\r\n"]),
)
def test_manifests_read_and_cut_exactly_what_the_line_parser_does(  # noqa: PLR0917
    keys, order, spelling, buckets, chunk_items, block, eol
):
    # GIVEN a JSON Lines manifest of one form and spelling, lines ended by a newline or CRLF,
    # one bucket or mixed, small blocks
    lines = [_record(order, spelling, buckets[i % len(buckets)], k) for i, k in enumerate(keys)]
    data = eol.join(lines) + eol
    reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=block)
    batches = list(reader.iter_batches())
    # THEN the records are the reference parser's, line by line
    expected = _reference(lines, 1)
    assert all(isinstance(r, ManifestRecord) for r in expected)
    assert flatten_batches(batches) == [as_tuple(r) for r in expected]
    # AND the chunks are cut, encoded and sized as the record-by-record path does it
    assert_spans_are_the_chunks(batches, expected, chunk_items=chunk_items, cap=5000)


def _json_dumps(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _pandas(obj: dict) -> bytes:
    r"""What pandas `to_json(orient="records", lines=True)` writes: compact, `/` as `\/`."""
    return orjson.dumps(obj).replace(b"/", b"\\/")


@pytest.mark.parametrize(
    ("write", "spelling", "forms"),
    [(_json_dumps, SPACED, 3), (_pandas, COMPACT, 2)],  # pandas escapes the uri's `s3://` too
)
def test_json_lines_as_python_and_pandas_write_them_are_read_dense(write, spelling, forms):
    # GIVEN JSON Lines written the way a Python loop (json.dumps) or pandas writes them
    keys = [f"photos/{i:05d} {{x}},y:é.jpg" for i in range(5000)]
    objects = (
        lambda k: {"bucket": "images-bucket", "key": k},
        lambda k: {"key": k, "bucket": "images-bucket"},
        lambda k: {"uri": f"s3://images-bucket/{k}"},
    )
    for obj in objects[:forms]:
        data = b"".join(write(obj(k)) + b"\n" for k in keys)
        assert spelling_of(data) is spelling
        # WHEN read in 4 KiB blocks
        reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=4096)
        batches = list(reader.iter_batches())
        # THEN all but each block's first (straddling) line come dense, as the parser reads them
        assert sum(len(b) for b in batches if isinstance(b, DenseBatch)) > 0.95 * len(keys)
        assert flatten_batches(batches) == [
            ("ok", n, "images-bucket", k, None) for n, k in enumerate(keys, 1)
        ]
        # AND Split sends them as the records they are, not item by item
        assert share_sent_as(batches, "objects") > 0.9
