"""Every manifest format and every bad line, table-driven, each plain and gzip."""

from __future__ import annotations

import pytest

from pipeline.failures import ManifestReadError
from tests.unit.manifest_helpers import read_all, write

OK, ERR = "ok", "err"

CASES = {
    "batch_csv_url_encoded_keys": (
        b"bkt,photos/a%20b.jpg\nbkt,c+d.jpg\nbkt,caf%C3%A9/%E2%82%AC.png\nbkt,x%2By.jpg\n",
        [
            (OK, 1, "bkt", "photos/a b.jpg", None),
            (OK, 2, "bkt", "c d.jpg", None),
            (OK, 3, "bkt", "café/€.png", None),
            (OK, 4, "bkt", "x+y.jpg", None),
        ],
    ),
    "batch_csv_version_ids": (
        b"bkt,k1,v111\nbkt,k2,\n",
        [(OK, 1, "bkt", "k1", "v111"), (OK, 2, "bkt", "k2", None)],
    ),
    "crlf_bom_and_blank_lines_counted": (
        b"\xef\xbb\xbfbkt,a.jpg\r\n\r\n   \r\nbkt,b.jpg\r\n\nbkt,c.jpg",
        [
            (OK, 1, "bkt", "a.jpg", None),
            (OK, 4, "bkt", "b.jpg", None),
            (OK, 6, "bkt", "c.jpg", None),
        ],
    ),
    "quoted_fields_with_commas_and_quotes": (
        b'"bkt","a,b.jpg"\n"bkt","say ""hi"".jpg","v1"\n',
        [(OK, 1, "bkt", "a,b.jpg", None), (OK, 2, "bkt", 'say "hi".jpg', "v1")],
    ),
    "uri_lines_literal_keys": (
        b's3://bkt/dir/a b+c.jpg\ns3://bkt/\xc3\xa9t\xc3\xa9.jpg\n"s3://bkt/q,1.jpg"\n',
        [
            (OK, 1, "bkt", "dir/a b+c.jpg", None),
            (OK, 2, "bkt", "été.jpg", None),
            (OK, 3, "bkt", "q,1.jpg", None),
        ],
    ),
    "header_csv_key_column": (
        b'Bucket,Key,Size,VersionId\nbkt,a b.jpg,10,v1\nbkt,"x,y.jpg",3,\n',
        [(OK, 2, "bkt", "a b.jpg", "v1"), (OK, 3, "bkt", "x,y.jpg", None)],
    ),
    "header_csv_uri_column": (
        b"id,uri\n1,s3://bkt/a.jpg\n2,notauri\n3\n",
        [(OK, 2, "bkt", "a.jpg", None), (ERR, 3, "BadUri"), (ERR, 4, "BadFieldCount")],
    ),
    "csv_bad_lines_never_stop_the_stream": (
        b'bkt,a.jpg\nonlyonefield\nbkt,a,b,c\n,key\nbkt,\n\xff\xfe,k\nbkt,%FF.jpg\n"bkt,x\nbkt,z.jpg\n',
        [
            (OK, 1, "bkt", "a.jpg", None),
            (ERR, 2, "BadFieldCount"),
            (ERR, 3, "BadFieldCount"),
            (ERR, 4, "BadBucket"),
            (ERR, 5, "NoKey"),
            (ERR, 6, "NotUtf8"),
            (ERR, 7, "BadKeyEncoding"),
            (ERR, 8, "BadCsv"),
            (OK, 9, "bkt", "z.jpg", None),
        ],
    ),
    "uri_bad_lines": (
        b"s3://bkt/a.jpg\nhttp://x/y\ns3://bkt\ns3:///k\n",
        [
            (OK, 1, "bkt", "a.jpg", None),
            (ERR, 2, "BadUri"),
            (ERR, 3, "NoKey"),
            (ERR, 4, "BadBucket"),
        ],
    ),
    "json_lines": (
        b'{"uri": "s3://bkt/a.jpg"}\n\n{"bucket": "bkt", "key": "b c.jpg", "versionId": "v9"}\r\n'
        b'"s3://bkt/c.jpg"\n',
        [
            (OK, 1, "bkt", "a.jpg", None),
            (OK, 3, "bkt", "b c.jpg", "v9"),
            (OK, 4, "bkt", "c.jpg", None),
        ],
    ),
    "json_lines_bad_lines": (
        b'{"uri": "s3://bkt/a.jpg"}\n{"bucket": "bkt"}\n[1, 2]\n{oops\n{"key": "\xff"}\n'
        b'{"bucket": "bkt", "key": 5}\n{"uri": "s3://bkt/z"}\n',
        [
            (OK, 1, "bkt", "a.jpg", None),
            (ERR, 2, "MissingField"),
            (ERR, 3, "NotAnObject"),
            (ERR, 4, "BadJson"),
            (ERR, 5, "NotUtf8"),
            (ERR, 6, "MissingField"),
            (OK, 7, "bkt", "z", None),
        ],
    ),
    "json_array_element_number_is_identity": (
        b'\xef\xbb\xbf [\n {"uri": "s3://bkt/a.jpg"},\n "s3://bkt/b.jpg",\n 42,\n'
        b' {"bucket": "bkt", "key": "c.jpg", "version_id": "v1"}\n]\n',
        [
            (OK, 1, "bkt", "a.jpg", None),
            (OK, 2, "bkt", "b.jpg", None),
            (ERR, 3, "NotAnObject"),
            (OK, 4, "bkt", "c.jpg", "v1"),
        ],
    ),
    "empty_file": (b"", []),
    "only_blank_lines": (b"\n\r\n\n", []),
}


@pytest.mark.parametrize("is_gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_manifest_yields_expected_items(tmp_path, case, is_gzip):
    # GIVEN a manifest in one format, with a misleading name (the format is sniffed)
    data, expected = CASES[case]
    path = write(tmp_path, "manifest.txt", data, is_gzip=is_gzip)
    # WHEN it is read / THEN every line is a record or a typed failure at its line number
    assert read_all(path) == expected


@pytest.mark.parametrize("is_gzip", [False, True], ids=["plain", "gzip"])
def test_line_over_limit_is_a_failure_and_reading_goes_on(tmp_path, is_gzip):
    long_key = b"k" * 5000
    data = b"bkt,a.jpg\nbkt," + long_key + b"\nbkt,b.jpg\nbkt," + long_key
    path = write(tmp_path, "m.csv", data, is_gzip=is_gzip)
    assert read_all(path, max_line_bytes=1000) == [
        (OK, 1, "bkt", "a.jpg", None),
        (ERR, 2, "LineTooLong"),
        (OK, 3, "bkt", "b.jpg", None),
        (ERR, 4, "LineTooLong"),
    ]


def test_line_exactly_at_limit_is_read(tmp_path):
    line = b"bkt," + b"k" * 96
    path = write(tmp_path, "m.csv", line + b"\n", is_gzip=False)
    assert read_all(path, max_line_bytes=100) == [(OK, 1, "bkt", "k" * 96, None)]
    assert read_all(path, max_line_bytes=99) == [(ERR, 1, "LineTooLong")]


def test_header_naming_key_but_no_bucket_stops_with_a_read_error(tmp_path):
    path = write(tmp_path, "m.csv", b"key,size\na.jpg,1\n", is_gzip=False)
    with pytest.raises(ManifestReadError) as info:
        read_all(path)
    assert info.value.error == "NoBucketColumn"
    assert info.value.line == 1
