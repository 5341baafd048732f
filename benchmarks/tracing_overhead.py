"""What a span costs when tracing is off, against an empty loop and against one image's work.

The classify handler opens a few spans per chunk (fetch, decode, classify, write) and at most a
couple per image; inference alone is ~10 ms per image. Measured in the same run:
an empty `with nullcontext()` loop (the floor), `span()` with tracing off, and — for scale —
`span()` on the in-memory recorder.

    .venv/bin/python benchmarks/tracing_overhead.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import time

from pipeline.observe.tracing import MemoryRecorder, Tracer, xray_tracer

IMAGE_WORK_S = 0.010


def per_call_ns(body, n: int) -> float:
    start = time.perf_counter()
    body(n)
    return (time.perf_counter() - start) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    n = parser.parse_args().n
    off = xray_tracer(is_enabled=False)
    annotations = {"run": "r", "chunk": 1}

    def floor(k):
        for _ in range(k):
            with contextlib.nullcontext():
                pass

    def disabled(k):
        for _ in range(k):
            with off.span("fetch", annotations=annotations):
                pass

    def recorded(k):
        tracer = Tracer(MemoryRecorder())
        for _ in range(k):
            with tracer.span("fetch", annotations=annotations):
                pass

    floor_ns = per_call_ns(floor, n)
    off_ns = per_call_ns(disabled, n)
    rec_ns = per_call_ns(recorded, n // 10)
    print(f"empty nullcontext loop : {floor_ns:8.0f} ns/span")
    print(f"span(), tracing off    : {off_ns:8.0f} ns/span  ({off_ns / floor_ns:.2f}x the floor)")
    print(f"span(), memory recorder: {rec_ns:8.0f} ns/span")
    share = 2 * off_ns * 1e-9 / IMAGE_WORK_S
    print(f"two spans per image with tracing off = {share:.6%} of a 10 ms image")


if __name__ == "__main__":
    main()
