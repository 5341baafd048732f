"""A Split pass's worst use of /tmp fits the function's `EphemeralStorage`, a Lambda hard limit.

Lines Split has to parse (not UTF-8, say) and cannot use wait in the failure backlog, spilled to
/tmp, until the chunk of the next good line is cut; then they stream into that chunk's parse
part, also spooled in /tmp until its PUT. At worst both hold a whole stretch at once, and a
stretch can last until the function's `Timeout`. The machine's disk has no such limit, so this
measures a real Split over such a stretch and holds the product to the template's size.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.local.template import load_sam_template
from pipeline.parts.store import PartWriter
from pipeline.split.failure_backlog import FailureBacklog
from pipeline.split.passes import SplitOptions, split_pass
from pipeline.split.sinks import CountingSink, MemoryParseFailureWriter

STRETCH = 60_000
MB_PER_VCPU = 1769
"""Lambda gives a function one vCPU at 1,769 MB, in proportion below."""
DEFAULT_TMP_MB = 512
"""A function's /tmp when the template names no `EphemeralStorage`."""
FASTER_CORE = 2.0
"""Room for a Lambda core twice as fast as this machine's at parsing."""


class _SizeOnlyS3:
    """Takes a part's PUT and keeps only its size."""

    size = 0

    def put_object(self, **kwargs: object) -> dict[str, str]:
        body = kwargs["Body"]
        self.size = len(body.read() if hasattr(body, "read") else body)  # type: ignore[union-attr,arg-type]
        return {"ETag": '"0"'}


def _split_function() -> dict[str, object]:
    return load_sam_template()["Resources"]["SplitFunction"]["Properties"]


def test_a_pass_of_nothing_but_unusable_lines_fits_the_split_function_tmp(tmp_path: Path):
    # GIVEN a manifest whose good lines surround a stretch of lines that are not UTF-8
    good = [b"bkt,images/%06d.jpg" % i for i in range(10)]
    bad = [b"images/\xff%d\xfekey-%08d.jpg" % (i % 97, i) for i in range(STRETCH)]
    source = tmp_path / "m.csv.gz"
    source.write_bytes(gzip.compress(b"\n".join(good[:5] + bad + good[5:]) + b"\n", 1))
    failures = MemoryParseFailureWriter()
    # WHEN Split reads it in one pass (CPU time: the rate a core gives, whatever the load)
    started = time.process_time()
    outcome = split_pass(
        str(source),
        None,
        run="3f1bb3bf7e8bf075ceed",
        options=SplitOptions(500),
        open_reader=LocalFileReader,
        sink=CountingSink(),
        failures=failures,
        index_store=LocalIndexStore(tmp_path / "idx"),
    )
    per_cpu_s = STRETCH / (time.process_time() - started)
    records = [record for part in failures.parts.values() for record in part]
    assert outcome.is_done and len(records) == STRETCH
    # AND its records wait in a backlog and stream into a part, as a Lambda pass's do
    with FailureBacklog() as backlog:
        for record in records:
            backlog.add(record)
        backlog_bytes = backlog.disk_bytes / (STRETCH - backlog.in_memory)
    s3 = _SizeOnlyS3()
    with PartWriter(s3, "results", "failures/run/parse-00000000.jsonl.gz") as part:
        for record in records:
            part.write(record.to_dict())
    part_bytes = s3.size / STRETCH
    # THEN a stretch as long as the function's Timeout lets a pass read fits its /tmp
    function = _split_function()
    vcpus = int(function["MemorySize"]) / MB_PER_VCPU  # type: ignore[call-overload]
    worst = int(function["Timeout"]) * per_cpu_s * vcpus * FASTER_CORE  # type: ignore[call-overload]
    storage = function.get("EphemeralStorage", {"Size": DEFAULT_TMP_MB})  # type: ignore[attr-defined]
    tmp_bytes = int(storage["Size"]) * 1024 * 1024
    need = worst * (backlog_bytes + part_bytes)
    assert need <= tmp_bytes, (
        f"{worst:,.0f} records at {backlog_bytes:.1f} + {part_bytes:.1f} bytes each: "
        f"{need / 2**20:,.0f} MB of /tmp, over {tmp_bytes / 2**20:,.0f} MB"
    )
