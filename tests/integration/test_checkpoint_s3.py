"""Resumable manifest reading across the moto S3 server: the same chain as the unit tests, with
the manifest read by ranged GETs and the checkpoint indexes stored as objects next to the run."""

from __future__ import annotations

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip.checkpoint import StreamKind, open_resumable
from pipeline.gzip.index_store import S3IndexStore
from pipeline.gzip.ranged import S3ObjectReader
from tests.checkpoint_chain import SMALL, gzip_single, manifest_text, run_chain

pytestmark = pytest.mark.integration

TEXT = manifest_text(120_000)


@pytest.mark.parametrize("streaming", [False, True], ids=["ranged-gets", "one-stream-per-pass"])
def test_chain_over_s3_reads_every_line_once_and_fetches_the_object_about_once(
    s3, bucket, streaming
):
    # GIVEN a ~1.2 MB gzip manifest in S3 and an index store under the run's prefix
    key = "in/manifest.csv.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=gzip_single(TEXT))
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    store = S3IndexStore(s3, bucket, "runs/r1/checkpoints")
    readers: list[S3ObjectReader] = []

    def open_reader(_pass_no: int) -> S3ObjectReader:
        readers.append(S3ObjectReader(s3, bucket, key, etag=etag, streaming=streaming))
        return readers[-1]

    # WHEN it is read in passes of 25,000 lines through S3
    chain = run_chain(open_reader, store, lines_per_pass=25_000)

    # THEN every line arrives once with its number, as in one pass
    assert chain.lines == list(enumerate(TEXT.splitlines(keepends=True), start=1))
    assert chain.passes >= 5
    # AND the bytes fetched over the wire are ~the object once (a block or two per pass)
    size = len(gzip_single(TEXT))
    fetched = sum(r.bytes_fetched for r in readers)
    assert fetched <= size * 1.05 + chain.passes * 2 * SMALL["block_bytes"]
    # AND a streaming reader made one GET per pass, where ranged reads made one per block
    requests = sum(r.requests for r in readers)
    if streaming:
        assert requests <= chain.passes
    else:
        assert requests >= fetched // SMALL["block_bytes"]
    # AND each gzip checkpoint's index is an object in the run's prefix, small
    refs = [c.index_ref for c in chain.checkpoints if c.index_ref]
    assert len(refs) >= chain.passes - 1
    for ref in refs:
        assert ref.startswith("runs/r1/checkpoints/zran-")
        assert s3.head_object(Bucket=bucket, Key=ref)["ContentLength"] < 40_000
    assert all(c.kind is StreamKind.GZIP for c in chain.checkpoints)


def test_manifest_replaced_mid_run_fails_instead_of_resuming_into_other_bytes(s3, bucket):
    # GIVEN a reader pinned to the ETag the run started with
    key = "in/changing.csv.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=gzip_single(TEXT[:100_000]))
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    # WHEN the object is replaced before the next pass reads it
    s3.put_object(Bucket=bucket, Key=key, Body=gzip_single(TEXT[:200_000]))
    reader = S3ObjectReader(s3, bucket, key, etag=etag)
    # THEN the read fails with a clear code
    with pytest.raises(ManifestReadError) as caught:
        open_resumable(reader, None, index_store=None, **SMALL).read()
    assert caught.value.error == "ManifestChanged"


def test_missing_manifest_and_missing_index_are_manifest_read_errors(s3, bucket):
    with pytest.raises(ManifestReadError) as missing:
        open_resumable(S3ObjectReader(s3, bucket, "nope.csv.gz"), None, index_store=None)
    assert missing.value.error in {"NoSuchKey", "404"}
    with pytest.raises(ManifestReadError) as no_index:
        S3IndexStore(s3, bucket, "runs/x").get_index("runs/x/zran-0.idx.z")
    assert no_index.value.error == "CheckpointIndexMissing"
