"""`lambdaflow scan` and a Split pass on manifests less regular than `manifest.py`'s, vs `gzip`.

    .venv/bin/python benchmarks/manifest_irregular.py [--mb 184] [--repeat 3] [--only buckets]
        [--keep DIR]

`benchmarks/manifest.py` writes every shape as one bucket, ASCII keys of one length and no bad
line: the shapes the proofs were built for. Manifests in the wild are less kind, and each of
these once sent a whole read block down a slower path: the rows of 40 buckets (URIs,
`bucket,key`, quoted CSV, JSON Lines with the bucket first, or the key first as `json.dumps`
writes them), one malformed line every 100,000 (URIs, `bucket,key`,
JSON Lines), an empty line after every 1,000th (URIs with LF or CRLF line ends, JSON
Lines), JSON Lines with CRLF line ends (bucket first, key first as `json.dumps` spells
them, and `{"uri"}`), and URI lines with non-ASCII keys, CRLF line ends, spaces, `+`, `%`, `#`,
`&` and `=` in keys, camera-roll keys under a dotted bucket name, and keys of many lengths.
For each file (gzip, ISA-L level 3, ~`--mb` MB uncompressed) it times, `--repeat` times
alternated, `gzip -dc FILE | wc -l`, `lambdaflow scan FILE --json` and one whole Split pass in
a fresh process (as `manifest.py` does both), and prints the medians, the ratios to
`gzip -dc | wc -l` (≥ 1.0x is the target) and scan's peak RSS. Scan must count every record,
every bad line and every line. `--keep DIR` writes the files there and keeps them (for
`split_side_by_side.py --mode scan` against another checkout).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest import (  # same directory
    _key,
    fresh_bytecode,
    timed_scan,
    timed_shell,
    timed_split,
    write_lines,
)

BUCKETS = [f"bucket-{i:02d}.example-data" for i in range(40)]
BAD_EVERY = 100_000
EMPTY_EVERY = 1_000


def _bucket(n: int) -> str:
    return BUCKETS[(n * 7919) % len(BUCKETS)]


def _bad(line: Callable[[int], str], bad: str) -> Callable[[int], str]:
    return lambda n: bad if n % BAD_EVERY == 0 else line(n)


def _empty_after(line: Callable[[int], str], eol: str = "\n") -> Callable[[int], str]:
    return lambda n: line(n) + eol if n % EMPTY_EVERY == 0 else line(n)


VARIANTS: dict[str, tuple[str, Callable[[int], str], str]] = {
    # name: (file suffix, line of record n, "bad": every 100,000th line is malformed, "empty":
    # an empty line follows every 1,000th)
    "URIs, 40 buckets": (".csv.gz", lambda n: f"s3://{_bucket(n)}/{_key(n)}\n", ""),
    "bucket,key CSV, 40 buckets": (".csv.gz", lambda n: f"{_bucket(n)},{_key(n)}\n", ""),
    "quoted CSV, 40 buckets": (
        ".csv.gz",
        lambda n: f'"{_bucket(n)}","{_key(n)}","{n}"\n',
        "",
    ),
    "JSON Lines, 40 buckets": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"{_bucket(n)}","key":"{_key(n)}"}}\n',
        "",
    ),
    "JSON Lines key first as json.dumps writes them, 40 buckets": (
        ".jsonl.gz",
        lambda n: f'{{"key": "{_key(n)}", "bucket": "{_bucket(n)}"}}\n',
        "",
    ),
    "URIs, a bad line every 100,000": (
        ".csv.gz",
        _bad(lambda n: f"s3://images-bucket/{_key(n)}\n", "not a uri\n"),
        "bad",
    ),
    "bucket,key CSV, a bad line every 100,000": (
        ".csv.gz",
        _bad(lambda n: f"images-bucket,{_key(n)}\n", "images-bucket\n"),
        "bad",
    ),
    "JSON Lines, a bad line every 100,000": (
        ".jsonl.gz",
        _bad(lambda n: f'{{"bucket":"images-bucket","key":"{_key(n)}"}}\n', "{oops}\n"),
        "bad",
    ),
    "URIs, an empty line every 1,000": (
        ".csv.gz",
        _empty_after(lambda n: f"s3://images-bucket/{_key(n)}\n"),
        "empty",
    ),
    "URIs, CRLF, an empty line every 1,000": (
        ".csv.gz",
        _empty_after(lambda n: f"s3://images-bucket/{_key(n)}\r\n", "\r\n"),
        "empty",
    ),
    "JSON Lines, an empty line every 1,000": (
        ".jsonl.gz",
        _empty_after(lambda n: f'{{"bucket":"images-bucket","key":"{_key(n)}"}}\n'),
        "empty",
    ),
    "URIs, non-ASCII keys": (".csv.gz", lambda n: f"s3://images/café/日本/{_key(n)}\n", ""),
    "URIs, CRLF": (".csv.gz", lambda n: f"s3://images-bucket/{_key(n)}\r\n", ""),
    "JSON Lines, CRLF": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"images-bucket","key":"{_key(n)}"}}\r\n',
        "",
    ),
    "JSON Lines key first as json.dumps writes them, CRLF": (
        ".jsonl.gz",
        lambda n: f'{{"key": "{_key(n)}", "bucket": "images-bucket"}}\r\n',
        "",
    ),
    "JSON Lines of URIs, CRLF": (
        ".jsonl.gz",
        lambda n: f'{{"uri":"s3://images-bucket/{_key(n)}"}}\r\n',
        "",
    ),
    "URIs, spaces and +%#&= in keys": (
        ".csv.gz",
        lambda n: f"s3://images-bucket/a b+c%20d#e=f&g/{_key(n)}\n",
        "",
    ),
    "URIs, camera keys, dotted bucket": (
        ".csv.gz",
        lambda n: f"s3://my.photos-2023/2023/{n % 12 + 1:02d}/IMG_{n:08d}.JPG\n",
        "",
    ),
    "URIs, keys of many lengths": (
        ".csv.gz",
        lambda n: f"s3://images-bucket/{'x' * ((n * 37) % 90)}/{_key(n)}\n",
        "",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=184, help="uncompressed size of each file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, medians shown")
    parser.add_argument("--only", default="", help="variants whose name contains this")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    fresh_bytecode(Path(__file__).resolve().parent.parent)
    variants = {k: v for k, v in VARIANTS.items() if args.only.lower() in k.lower()}
    with tempfile.TemporaryDirectory(prefix="lambdaflow-irregular-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        print(
            "| manifest | lines | `gzip -dc \\| wc -l` | scan | scan / gzip | Split pass "
            "| Split / gzip | scan peak RSS |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, (suffix, line, odd) in variants.items():
            path = root / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + suffix)  # shell-safe
            records = write_lines(path, line, args.mb * 2**20)
            bad = records // BAD_EVERY if odd == "bad" else 0
            lines = records + (records // EMPTY_EVERY if odd == "empty" else 0)
            raw, scan, split, rss = [], [], [], 0.0
            for _ in range(args.repeat):
                raw.append(timed_shell(f"gzip -dc {path} | wc -l")[0])
                secs, report, _ = timed_scan(path)
                assert (report["records"], report["lines"]) == (records - bad, lines), report
                scan.append(secs)
                rss = max(rss, report["peak_rss_mb"])
                split.append(timed_split(path)[0])
            gz, sc, sp = map(statistics.median, (raw, scan, split))
            print(
                f"| {name} | {lines:,} | {gz:.2f} s | {sc:.2f} s | **{gz / sc:.2f}x** "
                f"| {sp:.2f} s | **{gz / sp:.2f}x** | {rss:.1f} MB |",
                flush=True,
            )
            if not args.keep:
                path.unlink()


if __name__ == "__main__":
    main()
