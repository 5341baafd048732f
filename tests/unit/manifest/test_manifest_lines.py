"""LineSplitter against a reference, whatever sizes the underlying reads return."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.lines import HeadStream, LineRun, LineSplitter, around_blank_lines


class Trickle:
    """A stream that returns at most `step` bytes a read, as a slow socket would."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))


def reference(data: bytes, limit: int) -> list[tuple[bytes | None, int]]:
    """Each line (None when longer than `limit`) with the offset just past it."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    out, offset = [], start
    *lines, last = data[start:].split(b"\n")
    for line in lines:
        offset += len(line) + 1
        out.append((None if len(line) > limit else line, offset))
    if last:
        out.append((None if len(last) > limit else last, offset + len(last)))
    return out


def split(data: bytes, step: int, limit: int, head: int) -> list[tuple[bytes | None, int]]:
    stream = Trickle(data[head:], step)
    splitter = LineSplitter(HeadStream(data[:head], stream), max_line_bytes=limit)
    return [(line, splitter.end) for line in splitter]


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"a", b"bb", b"\n", b"\r\n", b"x" * 30, b"\xef\xbb\xbf"]), max_size=40
    ).map(b"".join),
    step=st.integers(1, 64),
    limit=st.integers(0, 40),
    head=st.integers(0, 10),
)
def test_line_splitter_matches_reference_for_any_read_sizes(data, step, limit, head):
    assert split(data, step, limit, min(head, len(data))) == reference(data, limit)


def test_end_offsets_and_long_lines():
    data = b"ab\n" + b"x" * 10 + b"\ncd"
    assert split(data, 4, 5, 0) == [(b"ab", 3), (None, 14), (b"cd", 16)]


def test_bom_only_stripped_at_offset_zero():
    stream = HeadStream(b"", io.BytesIO(b"\xef\xbb\xbfab\n"), start_offset=10)
    assert list(LineSplitter(stream)) == [b"\xef\xbb\xbfab"]


def runs(data: bytes, step: int, limit: int, head: int, block: int) -> list:
    """`iter_runs` flattened to (line or None when over `limit`, offset past it)."""
    splitter = LineSplitter(
        HeadStream(data[:head], Trickle(data[head:], step)), max_line_bytes=limit
    )
    out = []
    for run in splitter.iter_runs(block):
        offset = run.start
        if run.data is not None:
            assert run.data == b"".join(line + b"\n" for line in run.lines())
        for line in run.lines():
            offset = run.end if line is None else offset + len(line) + 1
            out.append((None if line is None or len(line) > limit else line, min(offset, run.end)))
        assert offset in (run.end, run.end + 1)  # +1: the last line had no newline
    return out


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"a", b"bb", b"\n", b"\r\n", b"x" * 30, b"\xef\xbb\xbf"]), max_size=40
    ).map(b"".join),
    step=st.integers(1, 64),
    limit=st.integers(0, 40),
    head=st.integers(0, 10),
    block=st.integers(1, 64),
)
def test_line_runs_hold_the_same_lines_and_offsets_as_line_iteration(
    data, step, limit, head, block
):
    head = min(head, len(data))
    assert runs(data, step, limit, head, block) == reference(data, limit)


def _is_blank(line: bytes) -> bool:
    """Whether a line (with its newline) is blank as the reader skips it: whitespace alone."""
    return line.endswith(b"\n") and (line == b"\n" or line[:-1].isspace())


def _split_at_lf(data: bytes) -> list[bytes]:
    """The lines of whole-line data, each with its newline (the last may lack one)."""
    *lines, last = data.split(b"\n")
    return [line + b"\n" for line in lines] + ([last] if last else [])


BLANK_OR_NOT = [b"", b"\r", b" ", b" \t\x0b\x0c", b"\t\r", b" x", b"\r ", b"\t,k", b"x\ry"]
BLANK_OR_NOT += [b"s3://b/k", b"b,k", b"s3://b/a-longer-key"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(BLANK_OR_NOT),
        max_size=40,
    ),
    eol=st.sampled_from([b"\n", b"\r\n"]),
    last_eol=st.booleans(),
    narrowest=st.integers(1, 60),
    start=st.integers(0, 1000),
)
def test_runs_cut_around_blank_lines_keep_every_byte_and_prove_only_lines_between(
    lines, eol, last_eol, narrowest, start
):
    # GIVEN whole lines, some blank (empty, a CR alone, spaces and tabs), some starting with
    # whitespace but not blank
    data = eol.join(lines) + (eol if last_eol and lines else b"")
    run = LineRun(start, start + len(data), data)
    # WHEN cut around its blank lines
    pieces = around_blank_lines(run, narrowest=narrowest)
    # THEN None exactly when no line is blank; else the pieces hold every byte in order, each
    # of whole lines; the ones offered to a proof have no blank line, are at least `narrowest`
    # bytes, and have a blank line (or the run's edge) on each side; every other is read line
    # by line, and no two of those touch
    blank = [_is_blank(line) for line in _split_at_lf(data)]
    assert (pieces is None) == (not any(blank))
    if pieces is None:
        return
    assert b"".join(p.data for p, _ in pieces) == data
    assert [p.start for p, _ in pieces] == [start] + [p.end for p, _ in pieces[:-1]]
    assert pieces[-1][0].end == start + len(data)
    for i, (piece, provable) in enumerate(pieces):
        assert piece.data and piece.end - piece.start == len(piece.data)
        assert piece.start == start or data[piece.start - start - 1] == ord("\n")
        if not provable:
            assert i == 0 or pieces[i - 1][1], "two pieces read line by line touch"
            continue
        inside = _split_at_lf(piece.data)
        assert not any(_is_blank(line) for line in inside)
        assert len(piece.data) >= narrowest
        before, after = data[: piece.start - start], data[piece.end - start :]
        assert not before or _is_blank(_split_at_lf(before)[-1])
        assert not after or _is_blank(_split_at_lf(after)[0])


def test_one_blank_line_among_many_is_cut_out_alone():
    data = b"s3://b/k\n" * 1000 + b"\n" + b"s3://b/k\n" * 1000
    pieces = around_blank_lines(LineRun(0, len(data), data), narrowest=100)
    assert [(p.start, p.end, provable) for p, provable in pieces] == [
        (0, 9000, True),
        (9000, 9001, False),
        (9001, 18001, True),
    ]
