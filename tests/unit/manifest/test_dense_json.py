"""The vectorized JSON proofs accept exactly the blocks an independent definition calls plain.

`pipeline.manifest.dense_json` (JSON Lines, either key order) and `pipeline.manifest.
dense_array` (array spans) prove records plain from frame pieces gathered at the record ends
plus whole-block byte counts. Each is held here to a regular expression written from the
definition — every record exactly `{"bucket":"B","key":"K"}` (or key first; in an array, with
the first element's whitespace between its tokens: compact, or as `json.dump` writes it, on one
line or indented), B one of the known buckets, K one or more bytes that are not `"`, backslash,
a control byte or DEL, the whole UTF-8 — in both directions: a block it accepts must be plain,
and a plain block must be accepted; accepted blocks give the reference parser's records. Blocks
are plain records mixed with near misses (a byte flipped, dropped or doubled anywhere) and every
awkward key byte.
"""

from __future__ import annotations

import re

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest import dense_json
from pipeline.manifest.batch import LOOPED_BUCKETS, line_starts
from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_array import dense_array_batch
from pipeline.manifest.dense_json import (
    _line_starts_if_only_line_ends,
    dense_jsonl_lines,
    dense_jsonl_uri_lines,
    frame_matches,
)
from pipeline.manifest.json_spelling import COMPACT as COMPACT_SPELLING
from pipeline.manifest.json_spelling import SPACED as SPACED_SPELLING
from pipeline.manifest.parse import ManifestRecord, parse_json_value

PROPS = settings(max_examples=400, deadline=None)
BUCKETS = [b"bk", b"bk.b", b"bk-b", b"images-bucket", b"a-much-longer-bucket-name-here"]
ASCII_KEY_BYTES = [bytes([b]) for b in b'a/{}:,% "\\\x7f\t\x00\n\r']
OTHER_KEY_BYTES = [b"\xc3\xa9", b"\xe2\x80\xa8", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3"]
KEY_BYTES = st.sampled_from([*ASCII_KEY_BYTES, *OTHER_KEY_BYTES])
SPECIAL = st.sampled_from([b'"', b"\\", b"\x7f", b"\t", b"\x00", b"\r", b"\xff", b"\xc3", b"}"])
key = st.lists(KEY_BYTES, max_size=12).map(b"".join)
plain_key = st.lists(
    st.sampled_from([b"a", b"/", b"{", b"}", b":", b",", b"%", b" ", b"\xc3\xa9", b"\xe2\x80\xa8"]),
    min_size=1,
    max_size=12,
).map(b"".join)


COMPACT = (b"", b":", b",", b":", b"")
"""A record's layout: the bytes after `{`, its two colons and its comma with the whitespace
around them, the bytes before `}` (here as orjson writes them)."""
SPACED = (b"", b": ", b", ", b": ", b"")
"""As `json.dumps` writes a record."""
INDENTED = (b"\n    ", b": ", b",\n    ", b": ", b"\n  ")
"""As `json.dump(indent=2)` writes an array's element."""


def _record(bucket: bytes, k: bytes, key_first: bool, spelling=COMPACT) -> bytes:
    opened, colon, comma, second_colon, closing = spelling
    if key_first:
        body = b'"key"%b"%b"%b"bucket"%b"%b"' % (colon, k, comma, second_colon, bucket)
    else:
        body = b'"bucket"%b"%b"%b"key"%b"%b"' % (colon, bucket, comma, second_colon, k)
    return b"{%b%b%b}" % (opened, body, closing)


def _mutate(raw: bytes, at: int, how: int, extra: bytes) -> bytes:
    """A near miss: one byte flipped, dropped or doubled (`how` 0, 1, 2), or `extra` put in."""
    at %= len(raw)
    if how == 0:
        return raw[:at] + bytes([raw[at] ^ (1 << (at % 8))]) + raw[at + 1 :]
    if how == 1:
        return raw[:at] + raw[at + 1 :]
    return raw[:at] + (extra if how == 3 else raw[at : at + 1]) + raw[at:]


@st.composite
def records(draw, key_first: bool, known: list[bytes], spelling=COMPACT) -> list[bytes]:
    """Plain records of known buckets, mostly with one defect somewhere (or a few)."""
    n = draw(st.integers(1, 10))
    fields = [(draw(st.sampled_from(known)), draw(plain_key)) for _ in range(n)]
    out = [_record(b, k, key_first, spelling) for b, k in fields]
    i, defect = draw(st.integers(0, n - 1)), draw(st.integers(0, 6))
    bucket, k = fields[i]
    if defect in (1, 6):  # one more byte in a key: one JSON treats specially, or any
        at, more = draw(st.integers(0, len(k))), draw(SPECIAL if defect == 1 else KEY_BYTES)
        out[i] = _record(bucket, k[:at] + more + k[at:], key_first, spelling)
    elif defect == 2:  # an empty key, or any key
        out[i] = _record(bucket, draw(st.just(b"") | key), key_first, spelling)
    elif defect == 3:  # a byte flipped, dropped or doubled anywhere in a record
        at, how = draw(st.integers(0, 200)), draw(st.integers(0, 3))
        out[i] = _mutate(out[i], at, how, draw(KEY_BYTES))
    elif defect == 4:  # a bucket not known (valid or not), or the other key order
        other = draw(st.sampled_from([*BUCKETS, b"bk9", b"b", b""]))
        out[i] = _record(
            other, k, draw(st.booleans()) != key_first if other in known else key_first
        )
    elif defect == 5:  # a few records anything at all
        for j in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            spelt = draw(st.sampled_from([COMPACT, SPACED, INDENTED]))
            out[j] = _record(draw(st.sampled_from(BUCKETS)), draw(key), draw(st.booleans()), spelt)
    return out


def _plain_re(
    key_first: bool,
    buckets: list[bytes],
    *,
    sep: bytes = b"",
    end: bytes = b"\n",
    spelling: tuple[bytes, bytes] = COMPACT,
):
    bucket = b"(?:" + b"|".join(map(re.escape, buckets)) + b")"
    k = b'[^"\\\\\\x00-\\x1f\\x7f' + (b"}" if not end else b"") + b"]"
    k = b"(?:" + k + (b"|\\\\/" if end else b"") + b")+"  # JSON Lines: `\/` too (pandas)
    opened, colon, comma, second, closing = map(re.escape, spelling)
    body = b'"key"%b"%b"%b"bucket"%b"%b"' % (colon, k, comma, second, bucket) if key_first else None
    body = body or b'"bucket"%b"%b"%b"key"%b"%b"' % (colon, bucket, comma, second, k)
    record = b"\\{" + opened + body + closing + b"\\}"
    return re.compile(b"(?:" + re.escape(sep) + record + re.escape(end) + b")+")


def _layout_of(element: bytes) -> tuple[bytes, ...] | None:
    """The layout of a `{"bucket","key"}` element (as `COMPACT` spells it), or None: no such."""
    ws, value = rb"[ \t\r\n]*", rb'"[^"\\]*"'
    shape = rb'\{(%b)"bucket"(%b:%b)%b(%b,%b)"key"(%b:%b)%b(%b)\}' % (
        (ws, ws, ws, value, ws, ws, ws, ws, value, ws)
    )
    found = re.match(shape, element)
    return None if found is None else found.groups()


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _reference(raws: list[bytes], first_line: int) -> list[ManifestRecord]:
    return [parse_json_value(orjson.loads(raw), n) for n, raw in enumerate(raws, first_line)]


@PROPS
@given(
    data=st.data(),
    key_first=st.booleans(),
    known=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=5, unique=True),
    eol=st.sampled_from([b"\n", b"\r\n"]),
    many=st.booleans(),
)
def test_jsonl_blocks_are_dense_exactly_when_every_line_is_plain(data, key_first, known, eol, many):
    # GIVEN lines ended by a newline or CRLF (now and then the other one): plain records,
    # near misses, other key orders; known buckets few, or more than a proof tries in turn
    # (then each line's is looked up in a table)
    lines = [line.replace(b"\n", b"") for line in data.draw(records(key_first, known))]
    ends = [data.draw(st.sampled_from([eol, eol, eol, b"\n", b"\r\n", b"\r\r\n"])) for _ in lines]
    block = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    if many:
        known = [*known, *(b"unused-%02d" % i for i in range(LOOPED_BUCKETS))]
    # WHEN the block is offered to the dense check
    shape = DenseShape(7, 100, known, 10_000)
    batch = dense_jsonl_lines(block, shape, key_first=key_first)
    # THEN it is taken exactly when the definition calls every line plain, each ended as the
    # first line is, by a newline or CRLF (orjson reads `\r\r\n` as whitespace and a newline,
    # but no plain line ends so)
    pattern = _plain_re(key_first, known, end=ends[0])
    is_eol = ends[0] in {b"\n", b"\r\n"}
    plain = is_eol and pattern.fullmatch(block) is not None and _is_utf8(block)
    assert (batch is not None) == plain
    if batch is not None:  # and then its records are the reference parser's
        assert batch.records(0, len(batch)) == _reference(lines, 7)
        assert batch.resume_after(len(lines) - 1) == (7 + len(lines), 100 + len(block))


SEPARATORS = [b",", b"\n,", b",\n", b", ", b" ,\r\n  ", b",\t"]
NOT_SEPARATORS = [b"", b",,", b" ", b";", b"x,", b",\x00", b"\x0b,"]


@PROPS
@given(
    data=st.data(),
    sep=st.sampled_from(SEPARATORS * 3 + NOT_SEPARATORS),
    known=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=5, unique=True),
    spelling=st.sampled_from([COMPACT, SPACED, INDENTED]),
)
def test_array_spans_are_dense_exactly_when_every_element_is_plain(data, sep, known, spelling):
    # GIVEN a span of elements, compact or as `json.dump` spells them (one line, indented),
    # each after a separator (now and then another one)
    elements = data.draw(records(False, known, spelling))
    seps = [
        data.draw(st.sampled_from(SEPARATORS + NOT_SEPARATORS))
        if data.draw(st.integers(0, 9)) == 0
        else sep
        for _ in elements
    ]
    span = b"".join(s + e for s, e in zip(seps, elements, strict=True))
    # WHEN offered to the dense check
    batch = dense_array_batch(span, DenseShape(3, 50, known, 10_000))
    # THEN it is taken exactly when every element is plain in one layout (the first element's
    # whitespace in every element), after the first separator
    first = span[: span.find(b"{")] if b"{" in span else b"?"
    layout = _layout_of(span[len(first) :])
    patterns = [_plain_re(False, known, sep=first, end=b"", spelling=layout)] if layout else []
    is_plain = any(pattern.fullmatch(span) for pattern in patterns)
    plain = first.strip(b" \t\r\n") == b"," and is_plain and _is_utf8(span)
    assert (batch is not None) == bool(plain)
    if batch is not None:
        assert batch.records(0, len(batch)) == _reference(elements, 3)
        ends = np.cumsum([len(s + e) for s, e in zip(seps, elements, strict=True)])
        assert [batch.resume_after(i)[1] for i in range(len(elements))] == (ends + 50).tolist()


@PROPS
@given(
    data=st.binary(min_size=8, max_size=80),
    piece=st.binary(min_size=1, max_size=30),
    backward=st.booleans(),
    at=st.lists(st.integers(0, 80), max_size=20),
    plant=st.integers(0, 80),
)
def test_a_gathered_frame_match_is_the_slice_comparison(data, piece, backward, at, plant):
    # GIVEN the piece planted somewhere (so some offsets match), at offsets where the piece
    # lies inside `data`, and so does the word read for a piece under 8 bytes
    if plant + len(piece) <= len(data):
        data = data[:plant] + piece + data[plant + len(piece) :]
        at = [*at, plant]
    fits = (lambda a: a + len(piece) >= 8) if backward else (lambda a: a + 8 <= len(data))
    at = sorted(a for a in at if a + len(piece) <= len(data) and fits(a))
    offsets = np.array(at, np.int64)
    # WHEN matched by gathered words / THEN the answer is the slice comparison's
    got = frame_matches(data, offsets, piece, backward=backward)
    assert got.tolist() == [data[a : a + len(piece)] == piece for a in at]


@PROPS
@given(
    block=st.binary(max_size=60)
    | st.lists(st.sampled_from([b"a", b"\r\n", b"\n", b"\r", b"\x00"]), max_size=30).map(b"".join),
    eol=st.sampled_from([b"\n", b"\r\n"]),
)
def test_line_starts_come_only_from_a_block_whose_control_bytes_are_its_line_ends(block, eol):
    # GIVEN any bytes (control bytes anywhere, a last line with or without its line end)
    starts = _line_starts_if_only_line_ends(block, eol)
    # THEN line starts exactly when every control byte is part of an `eol` and one ends the
    # block
    controls = bytes(b for b in block if b < 0x20)
    n = block.count(b"\n")
    is_each_line_ended = block.count(eol) == n and controls == eol * n
    expected = bool(block) and block.endswith(eol) and is_each_line_ended
    assert (starts is not None) == expected
    if starts is not None:
        assert starts.tolist() == line_starts(block).tolist()


def test_a_cr_that_ends_no_line_is_no_crlf_line_end():
    # GIVEN as many CRs as newlines, a CR ending the block's last line but not its first
    assert _line_starts_if_only_line_ends(b"a\r\nb\r\n", b"\r\n") is not None
    assert _line_starts_if_only_line_ends(b"\ra\nb\r\n", b"\r\n") is None
    assert _line_starts_if_only_line_ends(b"a\r\nb\n", b"\r\n") is None
    assert _line_starts_if_only_line_ends(b"a\r\nb\r\n", b"\n") is None


def test_a_block_or_span_that_does_not_end_a_record_is_refused():
    shape = DenseShape(1, 0, [b"bk"], 1000)
    jsonl = b'{"bucket":"bk","key":"a"}\n{"bucket":"bk","key":"b"}\n'
    assert dense_jsonl_lines(jsonl, shape, key_first=False) is not None
    assert dense_jsonl_lines(jsonl + b'{"bucket"', shape, key_first=False) is None
    span = b',{"bucket":"bk","key":"a"},{"bucket":"bk","key":"b"}'
    assert dense_array_batch(span, shape) is not None
    for tail in (b",", b" ", b'"', b',{"bucket":"bk","key":"c"'):
        assert dense_array_batch(span + tail, shape) is None


ODD_KEYS = [b"", b'a"b', b'a"', b"a\\b", b"a\\", b"a\x7fb", b"a\tb", b"\x00", b"a\rb", b"\xff"]
ODD_KEYS += [b"a\xc3", b"\xed\xa0\x80", b"a}b", b"a}", b"}", b"{", b"a:b,c", b"%41+ \xe2\x80\xa8"]
ODD_FRAMES = [  # (bucket-first, key-first) records of bucket bk, key a, the frame broken
    (b'{"bucket":"bk","key":"a"x}', b'{"key":"a"x,"bucket":"bk"}'),
    (b'{"bucket":"bk","key":"a"}x', b'{"key":"a","bucket":"bk"}x'),
    (b'{"bucket":"bk","key":"a" }', b'{"key":"a","bucket":"bk" }'),
    (b'{"bucket":"bk","key":"a"', b'{"key":"a","bucket":"bk"'),
    (b'{"bucket":"bk","kex":"a"}', b'{"kex":"a","bucket":"bk"}'),
    (b'{"bucket":"bk","key":a"}', b'{"key":a","bucket":"bk"}'),
    (b'{"bucket":"bk","key":"a"}}', b'{"key":"a","bucket":"bk"}}'),
    (b'{"bucket":"bk""key":"a"}', b'{"key":"a""bucket":"bk"}'),
    (b' {"bucket":"bk","key":"a"}', b' {"key":"a","bucket":"bk"}'),
    (b'{"bucket":"bk","key":"a","x":"y"}', b'{"key":"a","bucket":"bk","x":"y"}'),
    (b'{"bucket":"bk9","key":"a"}', b'{"key":"a","bucket":"bk9"}'),
    (b'{"bucket":"b","key":"a"}', b'{"key":"a","bucket":"b"}'),
]


def _one_odd_among_plain(odd: bytes, key_first: bool) -> list[bytes]:
    before = [_record(b"bk", b"k%d" % i, key_first) for i in range(2)]
    return [*before, odd, *(_record(b"bk.b", b"k%d" % i, key_first) for i in range(2))]


@pytest.mark.parametrize("key_first", [False, True])
@pytest.mark.parametrize(
    "odd",
    [*(("key", k) for k in ODD_KEYS), *(("frame", f) for f in ODD_FRAMES)],
    ids=lambda o: repr(o)[:30],
)
def test_one_odd_line_decides_a_jsonl_block_as_the_definition_says(odd, key_first):
    kind, value = odd
    line = _record(b"bk", value, key_first) if kind == "key" else value[key_first]
    lines = _one_odd_among_plain(line, key_first)
    block = b"".join(x + b"\n" for x in lines)
    batch = dense_jsonl_lines(block, DenseShape(1, 0, [b"bk", b"bk.b"], 1000), key_first=key_first)
    plain = _plain_re(key_first, [b"bk", b"bk.b"]).fullmatch(block) and _is_utf8(block)
    assert (batch is not None) == bool(plain)
    if batch is not None:
        assert batch.records(0, len(batch)) == _reference(lines, 1)


_SPELT = {COMPACT: COMPACT_SPELLING, SPACED: SPACED_SPELLING}
MANY = [*BUCKETS, *(b"more-bucket-%02d" % i for i in range(LOOPED_BUCKETS))]
"""Known buckets past `LOOPED_BUCKETS`: each line's looked up in a table."""


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("spelling", [COMPACT, SPACED], ids=["compact", "spaced"])
@pytest.mark.parametrize("key_first", [False, True])
def test_every_one_byte_change_to_a_line_decides_a_block_of_many_buckets_as_the_definition_says(
    key_first, spelling, eol
):
    # GIVEN plain lines naming 13 known buckets (the short and the long among them)
    fields = [(MANY[i * 5 % len(MANY)], b"photos/%02d.jpg" % i) for i in range(len(MANY))]
    lines = [_record(b, k, key_first, spelling) for b, k in fields]
    pattern = _plain_re(key_first, MANY, end=eol, spelling=spelling)
    shape = DenseShape(1, 0, MANY, 1000)
    for at in range(len(lines[-1])):
        for how in range(3):
            for odd in (0, len(lines) - 1):  # the first line, and the last (read to the end)
                # WHEN one byte of one line is flipped, dropped or doubled
                changed = [*lines]
                changed[odd] = _mutate(lines[odd], at, how, b"")
                block = b"".join(line + eol for line in changed)
                batch = dense_jsonl_lines(
                    block, shape, key_first=key_first, spelling=_SPELT[spelling]
                )
                # THEN the block is taken exactly when the definition calls every line plain
                plain = pattern.fullmatch(block) is not None and _is_utf8(block)
                assert (batch is not None) == plain, (at, how, odd, changed[odd])
    for b, _ in fields[:3]:  # AND a line of an empty key, among plain ones, is refused
        empty = [*lines[:5], _record(b, b"", key_first, spelling), *lines[5:]]
        block = b"".join(line + eol for line in empty)
        assert (
            dense_jsonl_lines(block, shape, key_first=key_first, spelling=_SPELT[spelling]) is None
        )
    block = b"".join(line + eol for line in lines)
    batch = dense_jsonl_lines(block, shape, key_first=key_first, spelling=_SPELT[spelling])
    assert batch is not None
    assert batch.records(0, len(batch)) == _reference(lines, 1)


@pytest.mark.parametrize(
    "odd",
    [*(("key", k) for k in ODD_KEYS), *(("frame", f) for f in ODD_FRAMES)],
    ids=lambda o: repr(o)[:30],
)
def test_one_odd_element_decides_an_array_span_as_the_definition_says(odd):
    kind, value = odd
    element = _record(b"bk", value, False) if kind == "key" else value[0]
    elements = _one_odd_among_plain(element, False)
    span = b"".join(b",\n" + e for e in elements)
    batch = dense_array_batch(span, DenseShape(1, 0, [b"bk", b"bk.b"], 1000))
    pattern = _plain_re(False, [b"bk", b"bk.b"], sep=b",\n", end=b"")
    plain = pattern.fullmatch(span) and _is_utf8(span)
    assert (batch is not None) == bool(plain)
    if batch is not None:
        assert batch.records(0, len(batch)) == _reference(elements, 1)


BESIDE_THE_RECORD = [  # a line format, key first, whether a URI record
    (b'{"bucket":"bk","key":"k%d","version_id":"v%d"}\n', False, False),
    (b'{"bucket":"bk","key":"k%d","label":"cat %d"}\n', False, False),
    (b'{"key":"k%d","version_id":"v%d","bucket":"bk"}\n', True, False),
    (b'{"uri":"s3://bk/k%d","label":"cat %d"}\n', False, True),
]


@pytest.mark.parametrize(("line", "key_first", "is_uri"), BESIDE_THE_RECORD)
def test_records_with_a_string_field_beside_theirs_are_turned_away_by_the_first_line(
    monkeypatch, line, key_first, is_uri
):
    # They share a plain record's head and tail; `scan` proves them by template
    # (`pipeline.manifest.dense_template`), so these proofs give them up before their
    # whole-block searches, not after.
    def never(*_):
        raise AssertionError("searched the whole block")

    block = b"".join(line % (i, i) for i in range(4))
    shape = DenseShape(1, 0, [b"bk"], 1000)
    monkeypatch.setattr(dense_json, "_lines_and_escapes", never)
    if is_uri:
        assert dense_jsonl_uri_lines(block, shape) is None
    else:
        assert dense_jsonl_lines(block, shape, key_first=key_first) is None
