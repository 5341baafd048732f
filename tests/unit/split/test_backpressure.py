"""Split pauses once the WorkQueue holds hours of work, and a paused chain splits like one pass."""

from __future__ import annotations

import gzip
import logging

from botocore.exceptions import ClientError

from pipeline.config import Settings
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.backpressure import QueueGauge, max_waiting_chunks, sqs_depth
from pipeline.split.passes import SplitOptions
from tests.split_chain import SMALL_KNOBS, run_chain


def test_the_queue_may_hold_two_hours_of_the_workers_work():
    # 50 invocations x 75 images/s x 7,200 s, in chunks of 500 lines
    assert max_waiting_chunks(Settings()) == 54_000
    assert max_waiting_chunks(Settings(classify_concurrency=1000, chunk_items=100)) == 5_400_000
    assert max_waiting_chunks(Settings(split_max_waiting_chunks=7)) == 7


def test_the_gauge_asks_the_depth_at_most_every_few_seconds():
    now = [0.0]
    depths = iter([3, 5, 9])
    asked: list[int] = []

    def depth() -> int:
        asked.append(next(depths))
        return asked[-1]

    gauge = QueueGauge(depth, 5, every_s=10, clock=lambda: now[0])
    answers = []
    for t in (0, 1, 9.9, 10, 15, 20.5):
        now[0] = t
        answers.append(gauge.is_full())
    # asked at 0 (3: room), at 10 (5: full), at 20.5 (9: full); not asked in between
    assert asked == [3, 5, 9]
    assert answers == [False, False, False, True, False, True]


def _manifest(tmp_path, lines: int) -> str:
    rows = [b"bkt,images/%06d.jpg" % i for i in range(lines)]
    rows[17] = b"not a line"
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join(rows) + b"\n", mtime=0))
    return str(path)


def test_passes_paused_by_a_full_queue_split_exactly_like_one_pass(tmp_path):
    # GIVEN a manifest of ~40 chunks
    source = _manifest(tmp_path, 4_000)
    store = LocalIndexStore(tmp_path / "idx")
    options = SplitOptions(97, knobs=SMALL_KNOBS)
    # WHEN it is split in one pass, and with a queue that is always full
    one = run_chain(source, LocalFileReader, store, options)
    paused = run_chain(source, LocalFileReader, store, options, pause=lambda: True)
    # THEN the paused chain stopped early again and again, and said so until its last pass
    assert len(one.outcomes) == 1 and not one.outcomes[0].is_paused
    assert len(paused.outcomes) > 5
    assert [o.is_paused for o in paused.outcomes] == [True] * (len(paused.outcomes) - 1) + [False]
    assert paused.outcomes[-1].is_done
    # AND it sent the same chunks and parse parts: every line exactly once
    assert paused.chunks == one.chunks
    assert paused.parse_parts == one.parse_parts
    assert sorted(paused.lines + paused.failed) == list(range(1, 4_001))


def test_a_queue_with_room_never_pauses_a_pass(tmp_path):
    source = _manifest(tmp_path, 4_000)
    options = SplitOptions(97, knobs=SMALL_KNOBS)
    chain = run_chain(
        source, LocalFileReader, LocalIndexStore(tmp_path / "idx"), options, pause=lambda: False
    )
    assert [(o.is_paused, o.is_done) for o in chain.outcomes] == [(False, True)]


class _Sqs:
    """An SQS client answering GetQueueAttributes with a depth, or with an error."""

    def __init__(self, answer: int | Exception) -> None:
        self.answer = answer

    def get_queue_attributes(self, **kwargs: object) -> dict[str, dict[str, str]]:
        assert kwargs["AttributeNames"] == ["ApproximateNumberOfMessages"]
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.answer)}}


def test_the_depth_is_the_queue_s_waiting_messages_and_unknown_reads_as_room(caplog):
    assert sqs_depth(_Sqs(42), "url")() == 42
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetQueueAttributes")
    with caplog.at_level(logging.WARNING, logger="pipeline.split.backpressure"):
        assert sqs_depth(_Sqs(denied), "url")() == 0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("cannot read the WorkQueue's depth (An error occurred (AccessDenied)")
