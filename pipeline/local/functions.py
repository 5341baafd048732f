"""Stand in for the Lambda runtime: resolve `Handler:` strings and invoke them in-process.

Lambda imports the module named by a function's `Handler:` with the function's environment as the
process environment, then calls `handler(event, context)` per invocation. This module does the
same: `load_handler` imports through importlib (so the core never imports `handlers/`), applying
the function's environment first, because handlers build their settings and clients once, at
import, exactly as they do on a cold start.

It also owns the seam that makes Step Functions run real code locally: moto's Lambda backend for
`use_docker=false` (`moto.awslambda_simple`) echoes every invoke's input. `install_invoke_dispatch`
routes invokes of the functions we registered to `LocalFunctionRegistry.invoke` instead; unknown
functions keep moto's behaviour.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.local.patches import patch_once
from pipeline.local.xray import DAEMON_ADDRESS_VARIABLE
from pipeline.observe import tracing

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
TIMEOUT_ERROR = "Sandbox.Timedout"
"""The errorType Lambda reports for an invocation that ran past the function's Timeout."""
_QUALIFIED_ARN_COLONS = 7
"""arn:aws:lambda:region:account:function:name:qualifier"""


@dataclass(frozen=True, slots=True)
class LocalFunction:
    """A Lambda function of the template, as the local runtime needs it (picklable)."""

    logical_id: str
    name: str
    arn: str
    handler: str
    env: Mapping[str, str]
    timeout_s: int = 3
    memory_mb: int = 128


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    """An SQS → function mapping of the template, with the knobs Lambda's poller honours."""

    logical_id: str
    queue_url: str
    queue_arn: str
    function: LocalFunction
    batch_size: int = 10
    batching_window_s: float = 0.0
    reports_item_failures: bool = False
    max_concurrency: int | None = None


@dataclass(slots=True)
class LambdaContext:
    """The attributes of Lambda's context object that code commonly reads."""

    function: LocalFunction
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def function_name(self) -> str:
        """As on Lambda."""
        return self.function.name

    @property
    def invoked_function_arn(self) -> str:
        """As on Lambda."""
        return self.function.arn

    @property
    def memory_limit_in_mb(self) -> int:
        """As on Lambda."""
        return self.function.memory_mb

    @property
    def function_version(self) -> str:
        """Local functions are never published: always `$LATEST`."""
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        """As on Lambda."""
        return f"/aws/lambda/{self.function.name}"

    @property
    def log_stream_name(self) -> str:
        """As on Lambda (one stream per invocation locally)."""
        return self.aws_request_id

    def get_remaining_time_in_millis(self) -> int:
        """Time left of the function's `Timeout`, which split.py budgets its passes with."""
        elapsed_ms = (time.monotonic() - self._started) * 1000
        return max(0, int(self.function.timeout_s * 1000 - elapsed_ms))


def load_handler(function: LocalFunction) -> Handler:
    """Import `module.attr` from `Handler:`, with the function's environment applied first.

    Applying the environment to `os.environ` is what Lambda's runtime does; it happens once per
    process per module (import is cached), so all functions of one local stack must agree on the
    values they share — they do, since they come from the same template.
    """
    os.environ.update(function.env)
    module_name, _, attr = function.handler.rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, attr)
    daemon_address = function.env.get(DAEMON_ADDRESS_VARIABLE)

    def traced(event: Any, context: Any) -> Any:
        # Lambda's service opens each invocation's X-Ray segment; locally the runtime does (a
        # no-op unless the handler turned tracing on at import).
        with tracing.invocation(function.name, daemon_address=daemon_address):
            return handler(event, context)

    return traced


class LocalFunctionRegistry:
    """The functions of running local stacks, invokable by name or ARN."""

    def __init__(self) -> None:
        self._functions: dict[str, LocalFunction] = {}
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def register(self, function: LocalFunction) -> None:
        """Make `function` invokable by its name and its ARN."""
        with self._lock:
            self._functions[function.name] = function
            self._functions[function.arn] = function

    def unregister(self, function: LocalFunction) -> None:
        """Forget `function` (its stack stopped)."""
        with self._lock:
            self._functions.pop(function.name, None)
            self._functions.pop(function.arn, None)

    def find(self, name_or_arn: str) -> LocalFunction | None:
        """The registered function with this name, ARN or qualified ARN, if any."""
        unqualified = name_or_arn
        if name_or_arn.count(":") == _QUALIFIED_ARN_COLONS:
            unqualified = name_or_arn.rsplit(":", 1)[0]
        return self._functions.get(name_or_arn) or self._functions.get(unqualified)

    def handler_of(self, function: LocalFunction) -> Handler:
        """The loaded handler (imported on first use, as on a cold start)."""
        with self._lock:
            if function.handler not in self._handlers:
                self._handlers[function.handler] = load_handler(function)
            return self._handlers[function.handler]

    def invoke(self, function: LocalFunction, payload: bytes) -> tuple[bytes, str | None]:
        """Run one invocation; return the response payload and Lambda's FunctionError, if any.

        An exception becomes Lambda's error payload (`errorType`, `errorMessage`, `stackTrace`)
        with FunctionError `Unhandled`, which Step Functions turns into a task failure whose error
        name is the exception's class name. An invocation past the function's `Timeout` fails as
        on Lambda (`Sandbox.Timedout`); its thread cannot be killed, so it runs on, unseen.
        """
        event = json.loads(payload) if payload else {}
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=self._run, args=(function, event, outcome), daemon=True, name=function.name
        )
        runner.start()
        runner.join(function.timeout_s)
        if runner.is_alive():  # Lambda kills it; a thread cannot be killed, its result is dropped
            logger.warning("%s timed out after %s s", function.name, function.timeout_s)
            error = {
                "errorType": TIMEOUT_ERROR,
                "errorMessage": f"Task timed out after {function.timeout_s:.2f} seconds",
            }
            return json.dumps(error).encode(), "Unhandled"
        if "error" in outcome:
            return json.dumps(outcome["error"]).encode(), "Unhandled"
        return json.dumps(outcome["result"]).encode(), None

    def _run(self, function: LocalFunction, event: Any, outcome: dict[str, Any]) -> None:
        try:
            outcome["result"] = self.handler_of(function)(event, LambdaContext(function))
        except Exception as exc:  # becomes Lambda's error payload
            logger.warning("%s failed: %s", function.name, exc, exc_info=True)
            outcome["error"] = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }


REGISTRY = LocalFunctionRegistry()
"""The process-wide registry moto's invoke is routed to."""


def install_invoke_dispatch(registry: LocalFunctionRegistry = REGISTRY) -> None:
    """Route moto's Lambda invokes of registered functions to `registry` (idempotent)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend  # noqa: PLC0415  # the seam

    patch_once(
        LambdaSimpleBackend, "invoke", functools.partial(_dispatching, registry), rule=__name__
    )


def _dispatching(registry: LocalFunctionRegistry, original: Any) -> Any:
    def invoke(  # noqa: PLR0917  # moto's signature
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes | None:
        function = registry.find(function_name)
        if function is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        payload, error = registry.invoke(function, raw)
        if error:
            response_headers["x-amz-function-error"] = error
        return payload

    return invoke
