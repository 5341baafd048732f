import socket
import time
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from pipeline.failures import ConfigError
from pipeline.local.emulator import HOST, start_emulator, start_serving

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


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 another program listens on."""
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.timeout(60)
def test_an_emulator_on_a_busy_port_fails_at_once_naming_it(busy_port, emulator):
    # `emulator`: moto imported and patched once, as for the other tests here
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{busy_port}: "):
        start_emulator(busy_port)
    assert time.monotonic() - started < 10


@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # its exit
def test_a_server_thread_that_cannot_bind_is_an_error_not_a_wait_forever(busy_port, emulator):
    # GIVEN moto's server on a port taken after any check (its thread dies in werkzeug's bind)
    server = ThreadedMotoServer(ip_address=HOST, port=busy_port, verbose=False)
    # WHEN it is started THEN the start fails (moto's own start() waits forever)
    with pytest.raises(ConfigError, match=f"could not listen on 127.0.0.1:{busy_port}"):
        start_serving(server, busy_port)


def test_a_server_started_so_serves_and_stops_as_moto_s_own(emulator):
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    start_serving(server, 0)
    port = server.get_host_and_port()[1]
    with socket.create_connection((HOST, port), timeout=5):
        pass
    server.stop()
    with pytest.raises(OSError), socket.create_connection((HOST, port), timeout=5):
        pass
