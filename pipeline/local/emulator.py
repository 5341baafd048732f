"""Start and stop moto's HTTP server on 127.0.0.1, configured the way the pipeline needs it.

Real Step Functions execution is switched on and Lambda's Docker backend off before any resource
exists (the config must be set first, and `MOTO_PORT` must equal the server's port for
Step Functions tasks to call back into it). AWS's DynamoDB transaction conflicts and its Step
Functions quotas are installed on moto's backends (dynamodb_conflicts.py, quotas.py), as are
DynamoDB's expression limit and transaction tokens (dynamodb_expressions.py,
dynamodb_idempotency.py); S3's conditional writes are made atomic (s3_conditional_writes.py), and
`ast.parse` is serialised where the interpreter's is not thread-safe (parse_lock.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.failures import ConfigError
from pipeline.local.dispatch_cache import install_dispatch_cache
from pipeline.local.dynamodb_conflicts import install_transaction_conflicts
from pipeline.local.dynamodb_expressions import install_expression_limits
from pipeline.local.dynamodb_idempotency import install_idempotent_transactions
from pipeline.local.parse_lock import install_parse_lock
from pipeline.local.quotas import install_step_functions_quotas
from pipeline.local.s3_conditional_writes import install_atomic_conditional_writes
from pipeline.local.s3_copy_rules import install_copy_rules
from pipeline.local.s3_key_length import install_key_length_rule
from pipeline.local.sfn_callbacks import install_sfn_callbacks
from pipeline.local.sfn_integrations import install_sfn_integrations
from pipeline.local.sqs_in_flight import install_sqs_in_flight_limit
from pipeline.local.sqs_receive_cost import install_cheap_receives
from pipeline.local.sqs_rules import install_sqs_message_rules
from pipeline.local.sqs_send_cost import install_cheap_sends

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOCAL_REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": LOCAL_REGION,
}


@dataclass(frozen=True, slots=True)
class Emulator:
    """A running moto server; `env` is what a client needs to talk to it."""

    server: ThreadedMotoServer
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        """The `AWS_ENDPOINT_URL` every boto3 client of the stack uses."""
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point the SDK (and our CLI) at this emulator."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **DUMMY_CREDENTIALS}

    def stop(self) -> None:
        """Shut the server down; its state is lost."""
        self.server.stop()


def start_emulator(port: int = 0) -> Emulator:
    """Start moto on 127.0.0.1 (never 0.0.0.0, its default) at `port`, 0 meaning a free one.

    moto is imported here, not at module level: it takes seconds to import, and every
    `lambdaflow` command imports this module for its constants.

    Raises:
        ConfigError: `port` cannot be listened on (in use, or reserved), said in one line.
    """
    check_port_free(port)  # before moto's slow import and patches: a busy port fails at once
    from moto.core.config import default_user_config  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}
    # werkzeug logs every request at INFO; the pipeline's own logs are what a person wants to see.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # AWS's isolation and conflicts, its Step Functions quotas and SQS rules, which moto lacks.
    install_transaction_conflicts()
    install_idempotent_transactions()  # a retried transaction with its token: applied once
    install_expression_limits()  # 4 KB an expression
    install_step_functions_quotas(Settings.from_env().local_max_history_events)
    install_sfn_callbacks()  # an early SendTaskSuccess ends its task; AWS's task timeout
    install_sfn_integrations()  # a startExecution task's parameters reach the call
    install_sqs_message_rules()  # AWS's allowed characters and byte-counted size
    install_sqs_in_flight_limit()  # 120,000 messages in flight a queue
    install_atomic_conditional_writes()  # of two conditional PUTs of a key, one wins
    install_copy_rules()  # a copy's source ETag condition, and 5 GB a CopyObject
    install_key_length_rule()  # 1,024 bytes an object key
    install_dispatch_cache()  # ~1 ms of CPU less per request (see dispatch_cache)
    install_cheap_sends()  # a send does not walk the queue's messages (see sqs_send_cost)
    install_cheap_receives()  # nor does a received message (see sqs_receive_cost)
    install_parse_lock()  # werkzeug parses on server threads; 3.11.7's ast.parse is not safe
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    start_serving(server, port)
    host, bound_port = server.get_host_and_port()
    # moto's Step Functions executor calls back into the server it runs in through this port.
    os.environ["MOTO_PORT"] = str(bound_port)
    logger.info("moto server on %s:%s", host, bound_port)
    return Emulator(server=server, host=host, port=bound_port)


def check_port_free(port: int) -> None:
    """Fail in one line when 127.0.0.1:`port` cannot be bound, before the server tries it.

    werkzeug answers a failed bind inside moto's server thread with two lines on stderr and
    `sys.exit`, which ends that thread only; probing first (with werkzeug's SO_REUSEADDR, so a
    port in TIME_WAIT is not refused) says it as the CLI says every error. `start_serving`
    still catches a port taken between the probe and the server's bind.

    Raises:
        ConfigError: the port is in use, or not ours to bind.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"cannot listen on {HOST}:{port}: {reason}") from None


def start_serving(server: ThreadedMotoServer, port: int, poll_s: float = 0.05) -> None:
    """`server.start()`, except that a server thread that dies is an error, not a hang.

    moto's `start` waits, with no timeout, on an event its thread sets once bound; a thread
    that fails to bind ends without setting it, and `start` waits forever, deaf to Ctrl-C.
    This waits in short slices (Ctrl-C is heard between them) while the thread lives. It sets
    moto's own private fields so that `server.stop()` works as after `start()` (the moto
    version is locked; tests/integration/test_emulator.py checks both ends).

    Raises:
        ConfigError: the server thread ended before it listened.
    """
    thread = threading.Thread(target=server._server_entry, name="moto-server", daemon=True)
    server._thread = thread  # what moto's stop() joins
    thread.start()
    while not server._server_ready_event.wait(poll_s):
        if not thread.is_alive():
            raise ConfigError(f"the local AWS emulator could not listen on {HOST}:{port}")
