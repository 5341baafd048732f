"""CSV records that span physical lines: a quoted field holding a newline.

pandas, pyarrow and the csv module all write a key holding a newline as one quoted field across
two (or more) physical lines (RFC 4180). `RecordReader` joins such lines into one record: a line
that leaves a quoted field open is held as an `OpenRecord`, the next lines are added until the
joined row parses, and the record is numbered by its first physical line. A record that does not
close within the line-length limit or by the end of the stream, or whose joined form is no valid
row, is given up: its first line becomes the failure it always was and the lines after it are
read again one by one, so a stray quote never swallows the good lines after it.

Pure: no I/O, no parsing beyond the quoting state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUOTE = '"'
DELIMITER = ","


def ends_inside_quotes(text: str) -> bool:
    """True when `text` ends inside a quoted field, as the csv module (strict) reads quoting.

    A field opens quoting only with a quote as its first character; inside, `""` is a quote;
    a quote anywhere else in an unquoted field is a plain character.
    """
    inside = after_quote = False
    at_field_start = True
    for char in text:
        if inside:
            if char == QUOTE:
                inside, after_quote = False, True
            continue
        if after_quote:
            after_quote = False
            if char == QUOTE:  # "" inside a quoted field: a literal quote, still inside
                inside = True
                continue
        if char == DELIMITER:
            at_field_start = True
        elif at_field_start and char == QUOTE:
            inside, at_field_start = True, False
        else:
            at_field_start = False
    return inside


@dataclass(slots=True)
class OpenRecord:
    """Physical lines of one record whose quoted field is still open.

    `lines` holds (raw line without its newline, line number, offset just past its newline).
    """

    lines: list[tuple[bytes, int, int]] = field(default_factory=list)

    @property
    def first_line(self) -> int:
        """The record's line number: its first physical line."""
        return self.lines[0][1]

    @property
    def size(self) -> int:
        """Bytes of the joined record (newlines between its lines included)."""
        return sum(len(raw) for raw, _, _ in self.lines) + len(self.lines) - 1

    def joined(self) -> bytes:
        """The record's bytes, its lines joined by the newlines they were split at."""
        return b"\n".join(raw for raw, _, _ in self.lines)
