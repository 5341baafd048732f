r"""JSON array elements Split sends unparsed: the worker that classifies them reads them.

The array shapes no frame proof takes (written on one line or indented, objects with other
fields, URIs) were parsed by one `orjson.loads` a span (`parsed_json.array_values_batch`): an
object a record, ~0.5 µs each, three times the cost of decompressing it. As for lines
(`pipeline.manifest.raw_lines`), Split need not parse them: it finds where each element starts
and ends, sends the span's text, and the worker finds the same elements in it and parses each
with the reader's own `parse.parse_json_line`. An element that is no record is its chunk's
parse failure.

Elements are found as `ArraySplitter` finds them, by delimiters, and only where that is proved
from a few whole-span numpy passes; else the span is parsed as before:
- UTF-8, no backslash (so every `"` opens or closes a string) and an even number of quotes;
- objects: every `{` and `}` outside strings, as many of each, alternating (flat objects, the
  i-th `{` opening element i and the i-th `}` closing it); strings (URIs): the quote pairs;
- no `[` or `]` outside strings (the splitter counts their depth too);
- between two elements, whitespace and exactly one comma; nothing but elements and those;
- no element over the length limit (`LineTooLong`).
The span's message bytes are bounded as lines' are: twice its bytes, plus one an element.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import UnparsedBatch
from pipeline.manifest.dense import _is_utf8
from pipeline.manifest.dense_json import _WHITESPACE
from pipeline.manifest.parse import ManifestRecord, parse_json_line

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.failures import ManifestLineError
    from pipeline.manifest.dense import DenseShape

_QUOTE, _OPEN, _CLOSE, _COMMA = ord('"'), ord("{"), ord("}"), ord(",")
_BRACKETS = (ord("["), ord("]"))
_SEPARATOR = np.zeros(256, bool)
_SEPARATOR[list(_WHITESPACE + b",")] = True


@dataclass(frozen=True, slots=True)
class RawElementsBatch(UnparsedBatch):
    """Consecutive JSON array elements, sent unparsed: each one record or one parse failure.

    Element i is `data[opens[i] : closes[i] + 1]`; `starts[i]` is where its leading separator
    starts (`starts[n]` the span's end). Implements `batch.RecordBatch`, an element a record.
    """

    first_line: int
    start_offset: int
    data: bytes
    opens: npt.NDArray[np.intp]
    closes: npt.NDArray[np.intp]
    starts: npt.NDArray[np.int64]
    end_line: int
    end_offset: int
    part: int = 0
    failures: tuple[ManifestLineError, ...] = ()

    def __len__(self) -> int:
        return len(self.opens)

    def text(self, start: int, stop: int) -> str:
        """Elements [start, stop) and the separators between them (proved UTF-8)."""
        return self.data[self.opens[start] : self.closes[stop - 1] + 1].decode()

    def parsed(self, start: int, stop: int) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
        """Elements [start, stop) read as the worker reads them: records and parse failures."""
        found = read_raw_elements(self.text(start, stop), self.first_line + start)
        if found is None:  # cannot be: the same proof took them
            raise ValueError(f"elements from {self.first_line + start} do not split again")
        return found


def raw_elements_batch(span: bytes, shape: DenseShape) -> RawElementsBatch | None:
    """A span of whole elements as a `RawElementsBatch`, or None where it must be parsed.

    `span` is what `ArraySplitter` offers: a separator, then elements and separators, ending
    just past an element.
    """
    first = span.find(b"{") if b"{" in span else span.find(b'"')
    if first < 0 or span[:first].strip(_WHITESPACE) != b",":
        return None
    bounds = _bounds(span, first)
    if bounds is None:
        return None
    opens, closes = bounds
    if int((closes - opens).max()) + 1 > shape.max_line_bytes:
        return None  # an element over the limit must become a failure
    starts = np.empty(len(opens) + 1, np.int64)
    starts[0] = 0
    np.add(closes, 1, out=starts[1:])
    count = len(opens)
    return RawElementsBatch(
        shape.first_line,
        shape.start_offset,
        span,
        opens,
        closes,
        starts,
        shape.first_line + count,
        shape.start_offset + len(span),
        shape.part,
    )


def _bounds(data: bytes, first: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """Each element's first and last byte, when proved (module docstring); else None.

    `data[:first]` is the caller's to check; the elements run from `first` to the end.
    """
    if not _is_plain_text(data):
        return None
    block = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(block == _QUOTE)
    delimiters = _delimiters(block, quotes, first)
    if delimiters is None or not _only_separated(block, quotes, *delimiters):
        return None
    if block[first] == _OPEN and (np.searchsorted(quotes, delimiters[1]) % 2).any():
        return None  # a brace inside a string
    return delimiters


def _is_plain_text(data: bytes) -> bool:
    """UTF-8, no backslash, ending with an element's last byte."""
    return b"\\" not in data and data.endswith((b"}", b'"')) and _is_utf8(data)


def _delimiters(
    block: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp], first: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """Each element's opening and closing delimiter, alternating, the last at the end.

    Braces are taken where they are: whether they lie outside strings `_bounds` checks last.
    With no quote before the first element nor in a gap, as many quotes precede element i's
    `{` as element i - 1's `}`: only the `}` need to be found outside strings.
    """
    if len(quotes) % 2:
        return None
    if block[first] == _OPEN:
        opens, closes = np.flatnonzero(block == _OPEN), np.flatnonzero(block == _CLOSE)
        if len(opens) != len(closes):
            return None
    else:
        opens, closes = quotes[0::2], quotes[1::2]
    if not len(opens) or opens[0] != first or closes[-1] != len(block) - 1:
        return None
    if not ((opens < closes).all() and (closes[:-1] < opens[1:]).all()):
        return None
    return opens, closes


def _only_separated(
    block: npt.NDArray[np.uint8],
    quotes: npt.NDArray[np.intp],
    opens: npt.NDArray[np.intp],
    closes: npt.NDArray[np.intp],
) -> bool:
    """No bracket outside strings, and only whitespace and one comma between two elements.

    Only the gaps' bytes are looked at (a few an element), gathered by their offsets: a mask
    of the whole block through `cumsum` cost a quarter of a pass.
    """
    brackets = np.flatnonzero((block == _BRACKETS[0]) | (block == _BRACKETS[1]))
    if len(brackets) and not (np.searchsorted(quotes, brackets) % 2).all():
        return False  # an array inside an element: the splitter's depth would count it
    if len(opens) == 1:
        return True
    lengths = opens[1:] - closes[:-1] - 1
    if not lengths.all():
        return False  # two elements with nothing (no comma) between them
    if _every_gap_the_first(block, closes[:-1] + 1, lengths):
        return True
    firsts = np.zeros(len(lengths), np.intp)
    np.cumsum(lengths[:-1], out=firsts[1:])
    offsets = np.arange(int(firsts[-1] + lengths[-1])) - np.repeat(firsts, lengths)
    gaps = block[np.repeat(closes[:-1] + 1, lengths) + offsets]
    if not _SEPARATOR[gaps].all():
        return False
    return bool((np.add.reduceat(gaps == _COMMA, firsts) == 1).all())


def _every_gap_the_first(
    block: npt.NDArray[np.uint8], gaps: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp]
) -> bool:
    """Whether every gap (at `gaps`, `lengths` long) is the first one, itself one comma and spaces.

    A writer puts the same separator between all elements (`, `, or `,` and an indent): one
    gather a byte of it proves them, where gathering every gap's bytes by offset costs ~4x.
    False says only that this quick proof does not hold.
    """
    width = int(lengths[0])
    first = block[gaps[0] : gaps[0] + width]
    if first.tobytes().strip(_WHITESPACE) != b"," or not _SEPARATOR[first].all():
        return False
    if not (lengths == width).all():
        return False
    return all((block[gaps + k] == first[k]).all() for k in range(width))


def read_raw_elements(
    text: str, line: int
) -> tuple[list[ManifestRecord], list[ManifestLineError]] | None:
    """Raw elements (elements and separators, the first numbered `line`): records, failures.

    Each element is read by the reader's own parser for it. None when the text does not split
    into elements as Split proved it did (a poison message).
    """
    data = text.encode()
    bounds = _bounds(data, 0)
    if bounds is None:
        return None
    records: list[ManifestRecord] = []
    failures: list[ManifestLineError] = []
    for n, (start, end) in enumerate(zip(*bounds, strict=True), line):
        item = parse_json_line(data[start : end + 1], n)
        (records if isinstance(item, ManifestRecord) else failures).append(item)  # type: ignore[arg-type]
    return records, failures
