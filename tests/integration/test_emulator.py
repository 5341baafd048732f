import pytest

pytestmark = pytest.mark.integration


def test_emulator_serves_s3_over_http(s3, bucket, emulator):
    assert emulator.endpoint_url.startswith("http://127.0.0.1:")
    s3.put_object(Bucket=bucket, Key="a/b c.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b c.txt")["Body"].read() == b"hello"


def test_a_send_over_http_reads_no_message_of_a_full_queue(sqs, visible_reads):
    # GIVEN the emulator's SQS and a queue holding 200 messages
    url = sqs.create_queue(QueueName="send-cost-over-http")["QueueUrl"]
    for first in range(0, 200, 10):
        entries = [{"Id": str(n), "MessageBody": f"m{n}"} for n in range(first, first + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    visible_reads[0] = 0
    # WHEN ten more are sent / THEN the server looked at none of the 200 (it walked them all
    # on every send before), and still counts all 210 when asked
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"x{n}"} for n in range(10)]
    )
    assert visible_reads[0] == 0
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "210"
    sqs.delete_queue(QueueUrl=url)
