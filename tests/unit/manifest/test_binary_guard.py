"""The wrong file is refused in its first block, named: "a JPEG image, not a manifest"."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from pipeline.failures import ManifestReadError
from pipeline.manifest.guard import refuse_binary
from pipeline.manifest.reader import ManifestReader
from tests import photos


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.csv", "b,k.jpg\n")
    return out.getvalue()


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        data = b"b,k.jpg\n"
        info = tarfile.TarInfo("manifest.csv")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


WRONG_FILES = {
    "a JPEG image": lambda: photos.photo_bytes("coffee"),
    "a PNG image": lambda: photos.variants("coffee")["png"],
    "a GIF image": lambda: photos.encode(photos.photo("coffee"), "GIF"),
    "a WebP image": lambda: photos.encode(photos.photo("coffee"), "WEBP"),
    "a TIFF image": lambda: photos.encode(photos.photo("coffee"), "TIFF"),
    "a ZIP archive": _zip,
    "a tar archive": _tar,
    "a gzip inside a gzip": lambda: gzip.compress(b"b,k.jpg\n"),
    "a PDF document": lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    "binary data (NUL bytes)": lambda: bytes(range(256)) * 40,
    "UTF-16 text": lambda: "bucket,key\nb,k.jpg\n".encode("utf-16"),
}


@pytest.mark.parametrize("what", sorted(WRONG_FILES))
def test_wrong_file_is_named_and_refused(what):
    with pytest.raises(ManifestReadError) as caught:
        refuse_binary(WRONG_FILES[what]()[:65536])
    assert caught.value.error == "NotAManifest"
    assert caught.value.message.startswith(what)
    assert caught.value.message.endswith("not a manifest")


@pytest.mark.parametrize(
    "head",
    [
        b"my-bucket,photos/a.jpg\n",
        b"s3://my-bucket/a.jpg\n",
        b'{"bucket": "b", "key": "k.jpg"}\n',
        b'[{"bucket": "b", "key": "k.jpg"}]',
        "bucket,key\nb,caf\u00e9.jpg\n".encode(),
        b"\xef\xbb\xbfbucket,key\nb,k.jpg\n",
        b"dataftyp-images,a.jpg\n",
        b"s3://b/a key with a \x00 in it.jpg\n",  # S3 keys may hold one: UTF-8 text, read on
        "s3://b/\x00caf\u00e9".encode()[:-1],  # a NUL, and the block cut inside a character
        b"",
    ],
)
def test_text_manifests_pass(head):
    refuse_binary(head)


def test_reader_refuses_a_gzipped_jpeg_in_its_first_block(tmp_path):
    # GIVEN a JPEG, gzipped and named like a manifest
    path = tmp_path / "manifest.csv.gz"
    path.write_bytes(gzip.compress(photos.photo_bytes("coffee")))
    # WHEN it is read THEN reading stops before any line, naming what it is
    reader = ManifestReader(str(path))
    with pytest.raises(ManifestReadError) as caught:
        list(reader.iter_batches())
    assert caught.value.message == "a JPEG image, not a manifest"
    assert reader.lines_read == 0
