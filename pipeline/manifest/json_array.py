"""Split a top-level JSON array into its elements' bytes, with the byte offset after each.

ijson streams arrays well but exposes no byte offsets, so a resumed Split could only restart an
array from its beginning. This splitter finds element boundaries with two regexes (the search
runs in C), tracking only nesting depth and whether it is inside a string, so the byte just
after element k is a restart point: a reader started there with `start_offset` expects `,` or
`]`. Elements are parsed by the caller (orjson); a malformed but bounded element is therefore a
line failure, not the end of the stream. An element longer than the limit is read past in
constant memory and yielded as None. A stream that ends inside the array raises
`ManifestReadError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Protocol

from pipeline.failures import ManifestReadError
from pipeline.manifest.lines import BLOCK_BYTES, HeadStream

_TOKEN_RE = re.compile(rb'["\[\]{},]')
_STRING_REST_RE = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_WS = b" \t\r\n"
_FLAT_ELEMENT_RE = re.compile(
    rb'(\{(?:[^{}\[\]"]++|"(?:[^"\\]++|\\.)*+")*+\}|"(?:[^"\\]++|\\.)*+"|[^\s,\[\]{}"]++)'
    rb"\s*(?=[,\]])"
)
"""The common element in one match: a flat object, a string or a scalar, then `,` or `]`.

Possessive quantifiers (Python 3.11+) consume runs without backtracking: 2.4x faster."""
_NEED_MORE = -1
_QUOTE = ord('"')
_DEPTH_CHANGE = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1, ord(","): 0}


def _broken(message: str) -> ManifestReadError:
    return ManifestReadError(f"JSON array {message}", error="BadJson")


class SpanBatch(Protocol):
    """What `DenseSpan` returns: a batch of elements, and the offset just past its last."""

    end_offset: int


DenseSpan = Callable[[bytes, int], SpanBatch | None]
"""Proves a span of whole elements (its bytes, its offset) plain: a batch of them, or None.

The batch holds the span's elements, or its first ones only (a span cut inside a string is
proved up to the last element whole): the splitter goes on from the batch's `end_offset`."""


class ArraySplitter:
    """Iterate the raw bytes of each element of a JSON array (None: longer than the limit).

    `end` is the offset just past the last element yielded: where a resumed reader starts.
    With `dense`, once a buffer fill, the span from the last element's end to the last `}`
    read (`_span_end`) is offered to it; what it returns (a batch of those elements, proved
    plain) is yielded in their place, else they are split one by one
    (`pipeline.manifest.dense_array`, `pipeline.manifest.parsed_json`).
    """

    def __init__(
        self, source: HeadStream, *, max_element_bytes: int, dense: DenseSpan | None = None
    ) -> None:
        self._source = source
        self._limit = max_element_bytes
        self._is_resumed = source.offset > 0
        self._buf = b""
        self._base = source.offset  # absolute offset of self._buf[0]
        self._i = 0  # scan position in self._buf
        self.end = source.offset
        self._dense = dense
        self._dense_tried = source.offset  # buffer end at the last offer: one offer a fill

    def _more(self) -> bool:
        """Read a block, first dropping what is consumed; False at the end of the stream."""
        self._base += self._i
        self._buf = self._buf[self._i :]
        self._i = 0
        data = self._source.read(BLOCK_BYTES)
        self._buf += data
        return bool(data)

    def _next_byte(self) -> int | None:
        """Skip whitespace; the next byte (not consumed), or None at the end of the stream."""
        while True:
            buf = self._buf
            while self._i < len(buf) and buf[self._i] in _WS:
                self._i += 1
            if self._i < len(buf):
                return buf[self._i]
            if not self._more():
                return None

    def __iter__(self) -> Iterator[bytes | None]:
        is_after_element = self._is_resumed
        if not self._is_resumed and self._open_is_empty():
            return self._close()
        while True:
            if is_after_element and self._dense is not None:
                batch = self._offer_span()
                if batch is not None:
                    yield batch  # type: ignore[misc]  # a batch of elements, not one
                    continue
            byte = self._next_byte()
            if byte is None:
                raise _broken("ends before its closing ]")
            if is_after_element:
                if byte == ord("]"):
                    return self._close()
                if byte != ord(","):
                    raise _broken(f"expects , or ] at byte {self._base + self._i}")
                self._i += 1
            yield self._element()
            is_after_element = True

    def _open_is_empty(self) -> bool:
        """Consume the opening `[` (a BOM before it); True when `]` comes next."""
        self._source.skip_bom()
        self._base = self._source.offset
        if self._next_byte() != ord("["):
            raise _broken("does not start with [")
        self._i += 1
        return self._next_byte() == ord("]")

    def _offer_span(self) -> SpanBatch | None:
        """Offer the elements read past the last one yielded to `dense`; its batch, or None."""
        buffer_end = self._base + len(self._buf)
        if buffer_end <= self._dense_tried:
            return None
        self._dense_tried = buffer_end
        end = self._span_end()
        if end <= self._i:
            return None
        batch = self._dense(self._buf[self._i : end], self._base + self._i)  # type: ignore[misc]
        if batch is not None:
            self._i = batch.end_offset - self._base
            self.end = batch.end_offset
        return batch

    def _span_end(self) -> int:
        """Where the span offered ends: past the buffer's last `}`, else before its last `,`.

        The second serves an array of strings (URIs): before the last `",` if any (inside a
        string that would need an escaped quote), so a key holding a comma does not cut it.
        Any cut may fall inside an element: then the span is no valid JSON, and the check
        refuses it.
        """
        buf = self._buf
        end = buf.rfind(b"}", self._i) + 1
        if end:
            return end
        end = buf.rfind(b'",', self._i) + 1
        if end:
            return end
        end = buf.rfind(b",", self._i)
        while end > self._i and buf[end - 1] in _WS:
            end -= 1
        return end

    def _close(self) -> None:
        """Consume the closing ] and refuse anything but whitespace after it."""
        self._i += 1
        if self._next_byte() is not None:
            raise _broken(f"has data after its closing ] at byte {self._base + self._i}")

    def _element(self) -> bytes | None:
        """Scan one element from the next non-space byte; set `end` just past it."""
        self._next_byte()
        flat = _FLAT_ELEMENT_RE.match(self._buf, self._i)
        if flat is not None and flat.end(1) - self._i <= self._limit:  # 4x faster, same ends
            self._i = flat.end(1)
            self.end = self._base + self._i
            return flat.group(1)
        start, skipped = self._i, 0
        depth, in_string = 0, False
        while True:
            end, depth, in_string = self._scan(depth, in_string)
            if end != _NEED_MORE:
                self._i, self.end = end, self._base + end
                return None if skipped or end - start > self._limit else self._buf[start:end]
            if self._i - start > self._limit:  # too long: keep the scan state, drop its bytes
                skipped += self._i - start
            keep_from = self._i if skipped else start
            scanned = self._i - keep_from
            self._i = keep_from
            if not self._more():
                raise _broken("ends inside an element")
            start, self._i = 0, scanned

    def _scan(self, depth: int, in_string: bool) -> tuple[int, int, bool]:
        """Advance over tokens; (end of the element or _NEED_MORE, depth, in_string)."""
        buf = self._buf
        while True:
            if in_string:
                if not self._skip_string():
                    return _NEED_MORE, depth, True
                in_string = False
                if depth == 0:
                    return self._i, depth, False
            m = _TOKEN_RE.search(buf, self._i)
            if m is None:
                self._i = len(buf)
                return _NEED_MORE, depth, False
            char, self._i = buf[m.start()], m.end()
            if char == _QUOTE:
                in_string = True
                continue
            change = _DEPTH_CHANGE[char]
            if depth == 0 and change <= 0:  # , ] or } ends a scalar (a stray } is orjson's)
                end = m.start()
                while end > 0 and buf[end - 1] in _WS:  # end where the fast path ends
                    end -= 1
                return end, depth, False
            depth += change
            if depth == 0:
                return self._i, depth, False

    def _skip_string(self) -> bool:
        """Move past the rest of a string and its closing quote; False if the buffer ends first.

        A backslash at the very end of the buffer is left unconsumed, so the escape it starts
        is matched whole once more bytes arrive.
        """
        buf = self._buf
        j = _STRING_REST_RE.match(buf, self._i).end()  # type: ignore[union-attr]
        if j < len(buf) and buf[j] == ord('"'):
            self._i = j + 1
            return True
        self._i = j
        return False
