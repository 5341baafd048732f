"""JSON array elements laid out like their span's first: a batch only when read alike.

The reference is the element reader (`ArraySplitter` + `parse.parse_json_line`, element by
element): every array here is read both ways through small buffers, and the batches must give
its records and failures, restart points and item sizes.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_array_template import ElementsBatch, dense_array_template_batch
from tests.unit.manifest.test_manifest_dense_array import _items as array_items
from tests.unit.manifest.test_manifest_dense_array import _read as array_read
from tests.unit.manifest_helpers import (
    as_tuple,
    assert_batches_are_the_element_reader,
    flatten_batches,
    share_sent_as,
)

SHAPE = DenseShape(1, 0, [b"bkt-a", b"bkt-b"], 10**6)
SPELLINGS = {  # (between name and value, between fields, before the first, after the last)
    "compact": (":", ",", "{", "}"),
    "spaced": (": ", ", ", "{", "}"),
    "indented": (": ", ",\n    ", "{\n    ", "\n  }"),
}
SEPARATORS = [",", ", ", ",\n  ", "\n,  "]
GOOD_KEY = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters='"\\'),
    min_size=1,
    max_size=10,
)
ODD_KEY = st.sampled_from(["", 'q"q', "b\\s", "tab\t", "{,}:[]", "é/ü.png", "}"])
GOOD_BUCKET = st.sampled_from(["bkt-a", "bkt-b"])
ODD_BUCKET = st.sampled_from(["bkt-c", "Bad_Bucket", ""])
GOOD_NUMBER = st.integers(0, 10**17).map(str)
ODD_NUMBER = st.sampled_from(["-5", "1.5", "true", "null", "1e3", "1234567890123456789"])


def _mostly(draw, good, odd, clean):
    """A good value, or one time in ten in an array not `clean`, an odd one."""
    return draw(odd if not clean and draw(st.integers(0, 9)) == 0 else good)


def _element(fields: list[tuple[str, str]], spelling: str) -> str:
    colon, comma, opening, closing = SPELLINGS[spelling]
    return opening + comma.join(f"{json.dumps(n)}{colon}{v}" for n, v in fields) + closing


@st.composite
def arrays(draw) -> tuple[bytes, int]:
    """(an array of elements of one layout, some odd; a read size)."""
    clean = draw(st.booleans())
    sep = draw(st.sampled_from(SEPARATORS))
    count = draw(st.integers(1, 30))
    if draw(st.integers(0, 3)) == 0:  # URI strings
        elements = [
            orjson.dumps(
                _mostly(draw, st.sampled_from(["s3://bkt-a/", "s3://bkt-b/"]), ODD_URI, clean)
                + _mostly(draw, GOOD_KEY, ODD_KEY, clean)
            ).decode()
            for _ in range(count)
        ]
    else:
        names = ["uri"] if draw(st.booleans()) else ["bucket", "key"]
        names += draw(st.lists(st.sampled_from(["size", "label", "version_id"]), unique=True))
        order = draw(st.permutations(names))
        spelling = draw(st.sampled_from(list(SPELLINGS)))

        def value(name: str) -> str:
            if name == "uri":
                head = _mostly(
                    draw, st.sampled_from(["s3://bkt-a/", "s3://bkt-b/"]), ODD_URI, clean
                )
                return orjson.dumps(head + _mostly(draw, GOOD_KEY, ODD_KEY, clean)).decode()
            if name == "bucket":
                return orjson.dumps(_mostly(draw, GOOD_BUCKET, ODD_BUCKET, clean)).decode()
            if name == "size":
                return _mostly(draw, GOOD_NUMBER, ODD_NUMBER, clean)
            if name == "version_id":
                return orjson.dumps(draw(st.sampled_from(["", "v1", "3HL4kqtJvj"]))).decode()
            return orjson.dumps(_mostly(draw, GOOD_KEY, ODD_KEY, clean)).decode()

        elements = []
        for _ in range(count):
            fields = [(name, value(name)) for name in order]
            if not clean and draw(st.integers(0, 19)) == 0:  # now and then another layout
                fields = draw(st.permutations(fields))[: max(1, len(fields) - 1)]
            elements.append(_element(fields, spelling))
    data = "[" + sep.join(elements) + "]"
    return data.encode(), draw(st.integers(32, 1024))


ODD_URI = st.sampled_from(["s3:/bkt-a/", "s3://bkt-c/", "http://bkt-a/"])


def _assert_read_as_element_by_element(data: bytes, block: int) -> int:
    """Batches equal the element reader's items; how many elements came in `ElementsBatch`."""
    items = array_items(data, block)
    batches, _ = array_read(data, block)
    assert flatten_batches(batches) == [as_tuple(item) for item, _ in items]
    assert_batches_are_the_element_reader(batches, items, chunk_items=7)
    return sum(len(b) for b in batches if isinstance(b, ElementsBatch))


@settings(max_examples=300, deadline=None)
@given(case=arrays())
def test_an_array_of_one_layout_reads_as_element_by_element(case):
    _assert_read_as_element_by_element(*case)


@pytest.mark.parametrize(
    "dump",
    [
        lambda v: json.dumps(v).encode(),  # `json.dump(list, f)`: one line
        lambda v: json.dumps(v, indent=2).encode(),
        lambda v: json.dumps(v, indent="\t", separators=(",", ":")).encode(),
        lambda v: b"[" + b",\n".join(map(orjson.dumps, v)) + b"]",
    ],
    ids=["one line", "indented", "tabs, compact", "a line each"],
)
@pytest.mark.parametrize("shape", ["size", "uri,label", "version", "URIs"])
def test_arrays_as_python_writes_them_are_proved(dump, shape):
    # GIVEN ASCII keys (json.dumps escapes others, and an escape is never proved)
    keys = [f"photos/{i:05d} (1),{{x}}.jpg" for i in range(2000)]
    values = {
        "size": [{"bucket": "bkt-a", "key": k, "size": i * 7919} for i, k in enumerate(keys)],
        "uri,label": [{"uri": f"s3://bkt-b/{k}", "label": i % 10} for i, k in enumerate(keys)],
        "version": [{"key": k, "bucket": "bkt-a", "version_id": "v1"} for k in keys],
        "URIs": [f"s3://bkt-a/{k}" for k in keys],
    }[shape]
    # WHEN read through 4 KiB buffers THEN all but each buffer's first element are proved
    data = dump(values)
    assert _assert_read_as_element_by_element(data, 4096) > 0.9 * len(keys)
    # AND Split sends them as they are, as `objects`
    assert share_sent_as(array_read(data, 4096)[0], "objects") > 0.9


@pytest.mark.parametrize(
    "odd",
    [
        b'{"bucket": "bkt-a", "key": "k\\u00e9", "size": 1}',  # an escape
        b'{"bucket": "bkt-a", "key": "", "size": 1}',  # an empty key: NoKey
        b'{"bucket": "bkt-c", "key": "k", "size": 1}',  # a bucket the proof does not know
        b'{"bucket": "bkt-a", "key": "k", "size": 1.5}',  # a float
        b'{"key": "k", "bucket": "bkt-a", "size": 1}',  # another field order
        b'{"bucket": "bkt-a", "key": "k\tx", "size": 1}',  # a control byte in a string
        b'{"bucket": "bkt-a", "key": "k", "size": 1, "x": 2}',  # another field
        b'{"bucket": "bkt-a", "key": "k", "size": [1]}',  # an array
        b'{"bucket": "bkt-a", "key": "k\xff", "size": 1}',  # not UTF-8
    ],
)
def test_a_span_holding_one_odd_element_is_not_proved(odd):
    good = b', {"bucket": "bkt-a", "key": "k%d", "size": %d}'
    span = b"".join(good % (n, n) for n in range(20)) + b", " + odd
    assert dense_array_template_batch(b"".join(good % (n, n) for n in range(20)), SHAPE)
    assert dense_array_template_batch(span, SHAPE) is None


@pytest.mark.parametrize(
    "odd",
    [
        b', "s3://bkt-a/k"x',  # a byte after the string: the array is broken there
        b';;"s3://bkt-a/k"',  # no separator
        b', "s3://bkt-a/k\tx"',  # a control byte in the string
        b', "s3://bkt-a/k\xff"',  # not UTF-8
        b', "s3://bkt-c/k"',  # a bucket the proof does not know
        b', "s3://bkt-a/"',  # an empty key: NoKey
    ],
)
def test_a_span_of_uris_holding_one_odd_element_is_not_proved(odd):
    good = b"".join(b', "s3://bkt-a/k%d"' % n for n in range(20))
    assert dense_array_template_batch(good + b', "s3://bkt-b/k"', SHAPE)
    assert dense_array_template_batch(good + odd + b', "s3://bkt-b/k"', SHAPE) is None


def test_a_span_cut_inside_a_key_is_proved_up_to_its_last_whole_element():
    # the splitter cuts a span after the buffer's last `}`, which may lie inside a key
    element = b', {"bucket": "bkt-a", "key": "a}b"}'
    whole = dense_array_template_batch(element * 5, SHAPE)
    assert whole is not None
    assert (len(whole), whole.end_offset) == (5, 5 * len(element))
    cut = dense_array_template_batch(element * 4 + element[: element.find(b"}") + 1], SHAPE)
    assert cut is not None
    assert (len(cut), cut.end_offset) == (4, 4 * len(element))
    assert [r.key for r in cut.records(0, 4)] == ["a}b"] * 4


def test_a_span_ending_in_an_odd_whole_element_is_not_cut_before_it():
    # the span ends outside a string: it is taken whole or not at all, so the odd element
    # goes with its span to the path that takes it (Split's `raw_elements`) as before
    element = b', {"bucket": "bkt-a", "key": "k"}'
    assert dense_array_template_batch(element * 4 + b', {"nope": 1}', SHAPE) is None
