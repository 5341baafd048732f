"""The local X-Ray daemon stand-in under load, against sending the same documents directly.

Each "chunk" is what the classify worker emits: an invocation segment, a `chunk` span with its
StageClock metadata, 32 `classify` batch spans (the SDK streams them as separate documents past
its 30-subsegment threshold) and a `write_results` span. Measured in the same run:

1. baseline: the same documents sent straight to the emulator with PutTraceSegments, 50 a call;
2. the SDK → UDP → relay → PutTraceSegments path, timed from the first span to the last
   document stored, with the relay's drop counter (must stay 0).

    .venv/bin/python benchmarks/xray_relay.py [--chunks 200]
"""

from __future__ import annotations

import argparse
import time

from aws_xray_sdk.core import xray_recorder

from pipeline.local.emulator import start_emulator
from pipeline.local.xray import BATCH_SIZE, start_xray_relay, xray_client
from pipeline.observe import tracing
from pipeline.observe.tracing import StageClock, xray_tracer

BATCHES_PER_CHUNK = 32


class _Capture:
    """An emitter that keeps documents instead of sending them (for the baseline)."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    def send_entity(self, entity) -> None:
        self.documents.append(entity.serialize())

    def set_daemon_address(self, address) -> None:
        pass


def emit_chunks(count: int) -> None:
    for number in range(count):
        clock = StageClock()
        clock.add("fetch", 0.5, 500)
        clock.add("decode", 0.2, 500)
        with (
            tracing.invocation("lambdaflow-classify"),
            tracing.span("chunk", annotations={"run": "bench", "chunk": number}) as chunk,
        ):
            for _ in range(BATCHES_PER_CHUNK):
                with tracing.span("classify", metadata={"images": 16}):
                    pass
            with tracing.span("write_results", metadata={"rows": 500}):
                pass
            chunk.metadata("stages", clock.snapshot())


def stored_documents(client) -> int:
    summaries = client.get_trace_summaries(StartTime=time.time() - 3600, EndTime=time.time() + 60)
    ids = [s["Id"] for s in summaries["TraceSummaries"]]
    total = 0
    for offset in range(0, len(ids), 5):
        for trace in client.batch_get_traces(TraceIds=ids[offset : offset + 5])["Traces"]:
            total += len(trace["Segments"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=200)
    chunks = parser.parse_args().chunks
    emulator = start_emulator()
    client = xray_client(emulator.endpoint_url)
    relay = start_xray_relay(emulator.endpoint_url, port=0)
    tracing.configure(xray_tracer(is_enabled=True, patch_sdk=False, daemon_address=relay.address))

    real_emitter, capture = xray_recorder.emitter, _Capture()
    xray_recorder.emitter = capture
    emit_chunks(chunks)
    xray_recorder.emitter = real_emitter
    documents = capture.documents
    largest = max(len(d) for d in documents)
    started = time.perf_counter()
    for offset in range(0, len(documents), BATCH_SIZE):
        client.put_trace_segments(TraceSegmentDocuments=documents[offset : offset + BATCH_SIZE])
    direct_s = time.perf_counter() - started
    baseline_docs = stored_documents(client)

    started = time.perf_counter()
    emit_chunks(chunks)
    emit_s = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while relay.stats.received < len(documents) and time.monotonic() < deadline:
        time.sleep(0.01)
    relay.wait_idle(120)
    relay_s = time.perf_counter() - started
    stats = relay.stats
    relay.stop()
    emulator.stop()

    print(f"{chunks} chunks -> {len(documents)} documents (largest {largest:,} bytes)")
    print(f"baseline, PutTraceSegments direct : {len(documents) / direct_s:8.0f} docs/s")
    rate = stats.forwarded / relay_s
    print(f"SDK -> UDP relay -> emulator      : {rate:8.0f} docs/s ({direct_s / relay_s:.2f}x)")
    print(f"SDK emit time per chunk           : {1000 * emit_s / chunks:8.2f} ms")
    print(f"relay: {stats}; baseline documents stored by the emulator: {baseline_docs}")


if __name__ == "__main__":
    main()
