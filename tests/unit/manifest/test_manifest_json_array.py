"""ArraySplitter: element bytes and exact end offsets for any JSON array, any read sizes."""

from __future__ import annotations

import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import ManifestReadError
from pipeline.manifest.json_array import ArraySplitter
from pipeline.manifest.lines import HeadStream
from tests.unit.manifest.test_manifest_lines import Trickle

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _split(data: bytes, step: int, limit: int = 10**6, start_offset: int = 0):
    source = HeadStream(b"", Trickle(data[start_offset:], step), start_offset=start_offset)
    splitter = ArraySplitter(source, max_element_bytes=limit)
    return [(element, splitter.end) for element in splitter]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(json_values, max_size=8),
    step=st.integers(1, 50),
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
)
def test_elements_parse_back_and_every_end_is_a_restart_point(values, step, indent, ascii_only):
    # GIVEN any JSON array, written compact or pretty, read in arbitrary small pieces
    data = json.dumps(values, indent=indent, ensure_ascii=ascii_only).encode()
    got = _split(data, step)
    # THEN each element's bytes are exactly that element
    assert [json.loads(element) for element, _ in got] == values
    # AND restarting after any element yields exactly the elements after it
    for i, (_, end) in enumerate(got):
        assert _split(data, step, start_offset=end) == got[i + 1 :]


def test_over_long_elements_are_none_and_reading_goes_on():
    data = b'["' + b"x" * 5000 + b'", 1, {"k": "' + b"y" * 300 + b'"}, 2]'
    got = [e for e, _ in _split(data, step=64, limit=100)]
    assert got == [None, b"1", None, b"2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}', "does not start with ["),
        (b'[1, "a"  ', "ends before its closing ]"),
        (b'["abc', "ends inside an element"),
        (b"[1] x", "data after its closing ]"),
        (b"[1 } 2]", "expects , or ]"),
        (b"", "does not start with ["),
    ],
)
def test_broken_arrays_raise_read_errors(data, message):
    with pytest.raises(ManifestReadError, match=re.escape(message)) as info:
        _split(data, step=3)
    assert info.value.error == "BadJson"


def test_escaped_quotes_and_backslashes_split_across_reads():
    data = json.dumps(["a\\", 'b"]', '\\\\"', {"k": "}\\"}]).encode()
    for step in range(1, 12):
        assert [json.loads(e) for e, _ in _split(data, step)] == json.loads(data)


def test_stream_reads_only_what_it_needs_per_element():
    data = b"[" + b",".join(b'"s3://b/k%d"' % i for i in range(10_000)) + b"]"
    splitter = ArraySplitter(HeadStream(b"", io.BytesIO(data)), max_element_bytes=100)
    assert sum(1 for _ in splitter) == 10_000
    assert splitter.end == len(data) - 1
