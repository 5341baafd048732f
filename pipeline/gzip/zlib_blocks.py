"""zlib's raw inflate with its block boundaries, through ctypes: what Python's `zlib` hides.

A Split pass must leave a seek point behind it (a deflate block boundary: compressed offset,
bit offset, the 32 KiB window before it). zlib reports block boundaries only to a caller of
`inflate(…, Z_BLOCK)`, and resumes mid-byte only through `inflatePrime`; Python's `zlib` module
exposes neither. indexed_gzip (zran) does, but it inflates every byte twice when read forward
(its index expansion inflates ahead, then each read restarts at a seek point and inflates again:
BENCHMARKS.md "Split's own time is zran's inflating, twice"). This module binds the handful of
zlib calls a one-inflate reader needs, from the libz the process already has (CPython's `zlib`
links it on Linux); where none loads, Split reads through zran as before. `inflate` releases the
GIL, as zran's read does; the short calls keep it.

Knows nothing of gzip members, files or seek-point bookkeeping (`pipeline/gzip/one_inflate.py`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass

Z_OK = 0
Z_STREAM_END = 1
Z_BUF_ERROR = -5
Z_NO_FLUSH = 0
Z_BLOCK = 5
WINDOW_BYTES = 32 * 1024
_RAW_WINDOW_BITS = -15
_END_OF_BLOCK = 128
"""`data_type` bit: inflate returned right after a block's end-of-block code."""
_LAST_BLOCK = 64
"""`data_type` bit: the block being decoded is the stream's last."""
_UNUSED_BITS = 7
"""`data_type` bits: how many bits of the last byte taken are not yet used."""


class ZlibUnavailable(RuntimeError):
    """No libz could be loaded into this process: callers fall back to indexed_gzip."""


class ZlibError(ValueError):
    """inflate refused the data (corrupt deflate stream, bad dictionary)."""


class _ZStream(ctypes.Structure):
    _fields_ = (  # zlib.h's z_stream, in order
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint),
        ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint),
        ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_ulong),
        ("reserved", ctypes.c_ulong),
    )


@functools.cache
def _libz() -> tuple[ctypes.CDLL, ctypes.PyDLL]:
    """The process's libz, twice: `inflate` releases the GIL, the short calls keep it.

    A call that releases the GIL must take it back, which waits on the parser thread: a
    hand-over per call. Only `inflate` runs long enough to be worth one.
    """
    for name in ("libz.so.1", ctypes.util.find_library("z")):
        if not name:
            continue
        try:
            long_calls, short_calls = ctypes.CDLL(name), ctypes.PyDLL(name)
        except OSError:
            continue
        stream = ctypes.POINTER(_ZStream)
        long_calls.inflate.argtypes = (stream, ctypes.c_int)
        short_calls.zlibVersion.restype = ctypes.c_char_p
        short_calls.inflateInit2_.argtypes = (
            stream,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        short_calls.inflateEnd.argtypes = (stream,)
        short_calls.inflateReset.argtypes = (stream,)
        short_calls.inflatePrime.argtypes = (stream, ctypes.c_int, ctypes.c_int)
        short_calls.inflateSetDictionary.argtypes = (stream, ctypes.c_char_p, ctypes.c_uint)
        short_calls.inflateGetDictionary.argtypes = (
            stream,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_uint),
        )
        return long_calls, short_calls
    raise ZlibUnavailable("no libz to load (tried libz.so.1 and ctypes.util.find_library)")


def zlib_available() -> bool:
    """Whether a one-inflate reader can run here."""
    try:
        _libz()
    except ZlibUnavailable:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Step:
    """What one `RawInflater.inflate` call did.

    Attributes:
        consumed: Compressed bytes taken.
        produced: Decompressed bytes written.
        stream_end: The deflate stream ended (its last block is done).
        at_boundary: inflate stopped right after a block that is not the last: a seek point.
        bits: Unused bits of the last byte taken (a seek point's bit offset).
    """

    consumed: int
    produced: int
    stream_end: bool
    at_boundary: bool
    bits: int


class RawInflater:
    """One raw deflate stream (no gzip header or trailer), inflated into caller memory."""

    def __init__(self) -> None:
        self._open = False
        self._inflate, self._lib = _libz()
        self._stream = _ZStream()
        self._ref = ctypes.byref(self._stream)
        version = self._lib.zlibVersion()
        status = self._lib.inflateInit2_(
            self._ref, _RAW_WINDOW_BITS, version, ctypes.sizeof(_ZStream)
        )
        if status != Z_OK:
            raise ZlibError(f"inflateInit2 failed ({status})")
        self._open = True

    def reset(self) -> None:
        """Start a new deflate stream (the next gzip member) with the same memory."""
        self._check(self._lib.inflateReset(self._ref), "inflateReset")

    def prime(self, bits: int, value: int) -> None:
        """Feed the `bits` low bits of `value` first: a seek point that starts mid-byte."""
        self._check(self._lib.inflatePrime(self._ref, bits, value), "inflatePrime")

    def set_window(self, window: bytes) -> None:
        """The 32 KiB of output before a seek point, which back-references may reach."""
        self._check(
            self._lib.inflateSetDictionary(self._ref, window, len(window)), "inflateSetDictionary"
        )

    def window(self) -> bytes:
        """The last (up to) 32 KiB of output, as the next block may reference them."""
        out = ctypes.create_string_buffer(WINDOW_BYTES)
        size = ctypes.c_uint(0)
        self._check(
            self._lib.inflateGetDictionary(self._ref, out, ctypes.byref(size)),
            "inflateGetDictionary",
        )
        return out.raw[: size.value]

    def inflate(
        self, source: int, source_bytes: int, out: int, out_bytes: int, *, block: bool
    ) -> Step:
        """Inflate from address `source` into address `out`; stop at a block end if `block`.

        The caller keeps both buffers alive for the call. An error raises `ZlibError` with
        zlib's message; running out of input or output is not an error (`consumed` or
        `produced` says how far it got).
        """
        stream = self._stream
        stream.next_in = source
        stream.avail_in = source_bytes
        stream.next_out = out
        stream.avail_out = out_bytes
        status = self._inflate.inflate(self._ref, Z_BLOCK if block else Z_NO_FLUSH)
        if status not in (Z_OK, Z_STREAM_END, Z_BUF_ERROR):
            raise ZlibError(self._message() or f"status {status}")
        data_type = stream.data_type
        return Step(
            consumed=source_bytes - stream.avail_in,
            produced=out_bytes - stream.avail_out,
            stream_end=status == Z_STREAM_END,
            at_boundary=bool(data_type & _END_OF_BLOCK) and not data_type & _LAST_BLOCK,
            bits=data_type & _UNUSED_BITS,
        )

    def close(self) -> None:
        """Free zlib's state (idempotent)."""
        if self._open:
            self._open = False
            self._lib.inflateEnd(self._ref)

    def __del__(self) -> None:
        self.close()

    def _check(self, status: int, call: str) -> None:
        if status != Z_OK:
            raise ZlibError(f"{call} failed ({status}) {self._message()}".strip())

    def _message(self) -> str:
        """Zlib's own words for the last error (empty when it gave none)."""
        return self._stream.msg.decode(errors="replace") if self._stream.msg else ""
