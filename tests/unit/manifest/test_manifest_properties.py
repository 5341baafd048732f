"""Property tests: generated keys round-trip through every format; no input crashes the reader."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.reader import ManifestRecord, iter_manifest

_counter = itertools.count()
BUCKET = "bkt-1"
HEADER_WORDS = {"key", "uri", "url", "s3_uri", "object_key", "bucket"}

any_key = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
line_safe = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")
line_key = st.text(line_safe, min_size=1, max_size=40)
PROPS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _batch(keys, eol):
    return "".join(f"{BUCKET},{quote_plus(k, safe='/')}{eol}" for k in keys), 0


def _uri(keys, eol):
    return "".join(f"s3://{BUCKET}/{k}{eol}" for k in keys), 0


def _header(keys, eol):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow(["bucket", "key", "size"])
    writer.writerows([BUCKET, k, 1] for k in keys)
    return out.getvalue(), 1


def _jsonl(keys, eol):
    return "".join(json.dumps({"bucket": BUCKET, "key": k}) + eol for k in keys), 0


def _json_array(keys, eol):
    return json.dumps([f"s3://{BUCKET}/{k}" for k in keys], indent=1).replace("\n", eol), 0


def _write(tmp_path_factory, data: bytes, is_gzip: bool) -> str:
    path = tmp_path_factory.getbasetemp() / f"prop-{next(_counter)}"
    path.write_bytes(gzip.compress(data) if is_gzip else data)
    return str(path)


def _check_round_trip(tmp_path_factory, fmt, keys, eol, is_gzip):
    text, header_lines = fmt(keys, eol)
    path = _write(tmp_path_factory, text.encode(), is_gzip)
    items = list(iter_manifest(path))
    assert all(isinstance(i, ManifestRecord) for i in items), items
    assert [(r.line, r.bucket, r.key) for r in items] == [
        (n + 1 + header_lines, BUCKET, k) for n, k in enumerate(keys)
    ]


@pytest.mark.parametrize("fmt", [_batch, _jsonl], ids=["batch_csv", "jsonl"])
@PROPS
@given(keys=st.lists(any_key, min_size=1, max_size=30), crlf=st.booleans(), gz=st.booleans())
def test_any_key_round_trips_in_escaping_formats(tmp_path_factory, fmt, keys, crlf, gz):
    assume(not (fmt is _batch and keys[0].strip().lower() in HEADER_WORDS))
    _check_round_trip(tmp_path_factory, fmt, keys, "\r\n" if crlf else "\n", gz)


@pytest.mark.parametrize("fmt", [_uri, _header], ids=["uri_lines", "header_csv"])
@PROPS
@given(keys=st.lists(line_key, min_size=1, max_size=30), crlf=st.booleans(), gz=st.booleans())
def test_line_safe_key_round_trips_in_literal_formats(tmp_path_factory, fmt, keys, crlf, gz):
    _check_round_trip(tmp_path_factory, fmt, keys, "\r\n" if crlf else "\n", gz)


@PROPS
@given(keys=st.lists(any_key, min_size=1, max_size=30), gz=st.booleans())
def test_any_key_round_trips_in_a_json_array(tmp_path_factory, keys, gz):
    _check_round_trip(tmp_path_factory, _json_array, keys, "\n", gz)


@PROPS
@given(
    data=st.binary(max_size=3000),
    prefix=st.sampled_from([b"", b"[", b"{", b"bkt,", b"s3://", b"bucket,key\n"]),
    mode=st.sampled_from(["plain", "gzip", "truncated_gzip"]),
    limit=st.integers(min_value=1, max_value=200),
)
def test_arbitrary_bytes_raise_only_documented_errors(tmp_path_factory, data, prefix, mode, limit):
    # GIVEN any bytes, plain, gzip or cut-off gzip
    raw = prefix + data
    if mode != "plain":
        raw = gzip.compress(raw)
        raw = raw[: len(raw) // 2] if mode == "truncated_gzip" else raw
    path = _write(tmp_path_factory, raw, is_gzip=False)
    # WHEN read / THEN only records, line errors, or one ManifestReadError at the end
    lines = []
    try:
        for item in iter_manifest(path, max_line_bytes=limit):
            assert isinstance(item, ManifestRecord | ManifestLineError)
            assert isinstance(item.line, int)
            lines.append(item.line)
    except ManifestReadError as exc:
        assert exc.error
    assert lines == sorted(set(lines))


@PROPS
@given(keys=st.lists(any_key, min_size=1, max_size=30), cut=st.integers(0, 30))
def test_any_key_round_trips_through_an_inventory_report(tmp_path_factory, keys, cut):
    # GIVEN an S3 Inventory report whose keys are split over two gzip CSV parts, URL-encoded
    root = tmp_path_factory.getbasetemp() / f"inv-{next(_counter)}"
    (root / "data").mkdir(parents=True)
    parts = [keys[:cut], keys[cut:]]
    for i, part in enumerate(parts):
        rows = "".join(f'"{BUCKET}","{quote_plus(k, safe="/")}","1"\n' for k in part)
        (root / "data" / f"p{i}.csv.gz").write_bytes(gzip.compress(rows.encode()))
    doc = {"fileFormat": "CSV", "fileSchema": "Bucket, Key, Size"}
    doc["files"] = [{"key": f"data/p{i}.csv.gz"} for i in range(2)]
    (root / "manifest.json").write_text(json.dumps(doc))
    # WHEN read / THEN every key comes back, numbered across the parts
    items = list(iter_manifest(str(root / "manifest.json")))
    assert [(r.line, r.bucket, r.key) for r in items] == [
        (n + 1, BUCKET, k) for n, k in enumerate(keys)
    ]
