"""`ReadAheadRaw`: the inner stream's bytes in order, its error after them, nothing read while
paused (a checkpoint reads zran's seek points then), and a close that never hangs."""

from __future__ import annotations

import io
import random
import threading

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip.read_ahead import ReadAheadRaw

DATA = random.Random(3).randbytes(60_000)


class GatedRaw(io.RawIOBase):
    """`DATA` from `offset`, optionally one read per `gate` permit, then an error if given."""

    def __init__(
        self,
        data: bytes = DATA,
        *,
        gate: threading.Semaphore | None = None,
        error: Exception | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__()
        self._data, self._gate, self._error = data, gate, error
        self._pos = self._start = offset
        self.reads = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        if self._gate is not None:
            self._gate.acquire()
        self.reads += 1
        piece = self._data[self._pos - self._start : self._pos - self._start + len(buffer)]
        if not piece and self._error is not None:
            raise self._error
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


def _read_all(raw: io.RawIOBase, rng: random.Random) -> bytes:
    out = bytearray()
    while True:
        buf = bytearray(rng.choice([1, 5, 4096, 70_000]))
        n = raw.readinto(buf)
        if not n:
            return bytes(out)
        out += buf[:n]


def _inflating_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "zran-inflate"]


@pytest.mark.parametrize("block_bytes", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("ahead", [1, 3])
def test_yields_the_inner_bytes_in_order_and_tells_the_readers_position(block_bytes, ahead):
    # GIVEN a stream read ahead from offset 1000 (a resumed pass)
    raw = ReadAheadRaw(GatedRaw(offset=1000), block_bytes=block_bytes, ahead=ahead)
    # WHEN read with reads of every size THEN the bytes are the inner's, and tell is the reader's
    assert raw.tell() == 1000
    assert _read_all(raw, random.Random(block_bytes)) == DATA
    assert raw.tell() == 1000 + len(DATA)
    assert raw.readinto(bytearray(10)) == 0
    raw.close()
    assert not _inflating_threads()


def test_an_error_comes_after_every_byte_before_it_and_again_on_later_reads():
    # GIVEN an inner stream that breaks after its bytes
    broken = ManifestReadError("the gzip stream ends early", error="Truncated", line=None)
    raw = ReadAheadRaw(GatedRaw(error=broken), block_bytes=999, ahead=2)
    out = bytearray()
    # WHEN read to the break THEN every byte came first, then the error, then the same again
    with pytest.raises(ManifestReadError) as first:
        while True:
            buf = bytearray(4096)
            out += buf[: raw.readinto(buf)]
    assert bytes(out) == DATA
    with pytest.raises(ManifestReadError) as again:
        raw.readinto(bytearray(10))
    assert again.value is first.value
    raw.close()


def test_paused_stops_the_thread_between_reads_and_keeps_the_block_it_held():
    # GIVEN a thread that read two blocks: one queued, one held waiting for room (ahead=1)
    gate = threading.Semaphore(2)
    inner = GatedRaw(gate=gate)
    raw = ReadAheadRaw(inner, block_bytes=1000, ahead=1)
    while inner.reads < 2:  # both permits used: one block queued, one read for a full queue
        threading.Event().wait(0.001)
    # WHEN paused, with reads allowed again
    with raw.paused() as paused_inner:
        gate.release(50)
        # THEN no thread reads the inner stream (a checkpoint reads it now)
        assert paused_inner is inner
        assert not _inflating_threads()
        reads = inner.reads
        assert reads == 2
    # AND afterwards the thread goes on: every byte arrives once, in order
    gate.release(10_000)
    assert _read_all(raw, random.Random(1)) == DATA
    raw.close()


def test_close_ends_a_thread_waiting_on_a_full_queue_and_closes_the_inner_stream():
    # GIVEN a reader that took nothing, so the thread waits for room in the queue
    inner = GatedRaw()
    raw = ReadAheadRaw(inner, block_bytes=10, ahead=1)
    while inner.reads < 2:
        threading.Event().wait(0.001)
    # WHEN closed THEN the thread is gone and the inner stream closed
    raw.close()
    assert not _inflating_threads()
    assert inner.closed
