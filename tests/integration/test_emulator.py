import pytest

pytestmark = pytest.mark.integration


def test_emulator_serves_s3_over_http(s3, bucket, emulator):
    assert emulator.endpoint_url.startswith("http://127.0.0.1:")
    s3.put_object(Bucket=bucket, Key="a/b c.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b c.txt")["Body"].read() == b"hello"
