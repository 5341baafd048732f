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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.local.dispatch_cache import install_dispatch_cache
from pipeline.local.dynamodb_conflicts import install_transaction_conflicts
from pipeline.local.dynamodb_expressions import install_expression_limits
from pipeline.local.dynamodb_idempotency import install_idempotent_transactions
from pipeline.local.parse_lock import install_parse_lock
from pipeline.local.quotas import install_step_functions_quotas
from pipeline.local.s3_conditional_writes import install_atomic_conditional_writes
from pipeline.local.sfn_callbacks import install_sfn_callbacks
from pipeline.local.sfn_integrations import install_sfn_integrations
from pipeline.local.sqs_in_flight import install_sqs_in_flight_limit
from pipeline.local.sqs_receive_cost import install_cheap_receives
from pipeline.local.sqs_rules import install_sqs_message_rules
from pipeline.local.sqs_send_cost import install_cheap_sends

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

logger = logging.getLogger(__name__)

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
    """
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
    install_dispatch_cache()  # ~1 ms of CPU less per request (see dispatch_cache)
    install_cheap_sends()  # a send does not walk the queue's messages (see sqs_send_cost)
    install_cheap_receives()  # nor does a received message (see sqs_receive_cost)
    install_parse_lock()  # werkzeug parses on server threads; 3.11.7's ast.parse is not safe
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    # moto's Step Functions executor calls back into the server it runs in through this port.
    os.environ["MOTO_PORT"] = str(bound_port)
    logger.info("moto server on %s:%s", host, bound_port)
    return Emulator(server=server, host=host, port=bound_port)
