"""The embedded AWS stack: moto + every resource of template.yaml + the Lambda stand-ins.

`LocalStack.start()` starts (or reuses) the emulator, translates and provisions the template,
routes Step Functions' Lambda invokes to the handlers in this process, and starts one SQS poller
per event source mapping. `lambdaflow up`, `run`, `demo` and the integration tests all use it.

Seams for later work: `StackOptions.handler_overrides` swaps a function's `Handler:` (tests inject
faults through a wrapper handler, never by editing production code), and `on_started` hooks let a
the X-Ray daemon stand-in start with the stack.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline.local.emulator import Emulator, start_emulator
from pipeline.local.functions import REGISTRY, LocalFunction, install_invoke_dispatch
from pipeline.local.poller import PollerOptions
from pipeline.local.provision import ProvisionedStack, Provisioner
from pipeline.local.template import DEFAULT_TEMPLATE, translate_template
from pipeline.local.workers import ProcessPool, ThreadPoller, start_pollers
from pipeline.local.xray import XRayRelay, start_xray_relay

logger = logging.getLogger(__name__)

LOCAL_PARAMETERS: Mapping[str, str] = MappingProxyType(
    {
        "CreateImagesBucket": "true",  # a source bucket on the allowlist for `run`/`demo`
        "ProgressPollSeconds": "1",  # a laptop run is minutes, not hours: check often
        "ChunkItems": "100",  # a few cores, not a thousand Lambdas: smaller chunks spread better
    }
)
"""Template parameters of a local stack (overridable through `StackOptions.parameters`)."""


@dataclass(frozen=True, slots=True)
class StackOptions:
    """How to build a local stack; every default gives AWS's behaviour where it matters."""

    name: str = "lambdaflow"
    template_path: Path = DEFAULT_TEMPLATE
    parameters: Mapping[str, str] = field(default_factory=dict)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Worker processes for each mapping that scales out (see pipeline.local.workers)."""
    handler_overrides: Mapping[str, str] = field(default_factory=dict)
    """Logical function id → `module.attr` handler to run instead of the template's."""
    poller: PollerOptions = field(default_factory=PollerOptions)
    start_pollers: bool = True
    log_level: str = "WARNING"
    """The functions' log level (POWERTOOLS_LOG_LEVEL), as Lambda's logging config would set it."""


@dataclass(slots=True)
class LocalStack:
    """A running local stack; a context manager that stops what it started."""

    emulator: Emulator
    provisioned: ProvisionedStack
    options: StackOptions
    owns_emulator: bool
    runners: list[ProcessPool | ThreadPoller] = field(default_factory=list)
    relay: XRayRelay | None = None
    """The X-Ray daemon stand-in the functions send their segments to."""

    @classmethod
    def start(
        cls,
        options: StackOptions | None = None,
        *,
        emulator: Emulator | None = None,
        on_started: tuple[Callable[[LocalStack], Any], ...] = (),
    ) -> LocalStack:
        """Bring the whole stack up; reuse `emulator` when given (tests share one).

        Step Functions' tasks and the ingest poller run their handlers in this process, so this
        process's SDK is pointed at the emulator: a local handler must never reach real AWS.
        """
        options = options or StackOptions()
        owns_emulator = emulator is None
        emulator = emulator or start_emulator()
        os.environ.update(emulator.env)
        parameters = {**LOCAL_PARAMETERS, **options.parameters}
        template = translate_template(options.template_path, parameters)
        provisioned = Provisioner(options.name, emulator.endpoint_url, parameters).provision(
            template
        )
        _apply_overrides(provisioned, options.handler_overrides)
        relay = start_xray_relay(emulator.endpoint_url, port=0)
        runtime_env = {
            "POWERTOOLS_LOG_LEVEL": options.log_level,
            # EMF metric lines go to stdout like any log line: only when logging is verbose.
            "POWERTOOLS_METRICS_DISABLED": str(options.log_level not in {"DEBUG", "INFO"}).lower(),
            **relay.env,
        }
        _apply_runtime_env(provisioned, runtime_env)
        stack = cls(
            emulator=emulator,
            provisioned=provisioned,
            options=options,
            owns_emulator=owns_emulator,
            relay=relay,
        )
        install_invoke_dispatch()
        for function in provisioned.functions.values():
            REGISTRY.register(function)
        if options.start_pollers:
            stack.runners = start_pollers(
                provisioned.mappings, env=stack.env, workers=options.workers, options=options.poller
            )
        for hook in on_started:
            hook(stack)
        return stack

    @property
    def outputs(self) -> Mapping[str, str]:
        """The template's Outputs, resolved to local names and URLs."""
        return self.provisioned.outputs

    @property
    def env(self) -> dict[str, str]:
        """What a client of this stack needs: the SDK endpoint and dummy credentials."""
        return dict(self.emulator.env)

    @property
    def function_env(self) -> dict[str, str]:
        """The union of every function's template environment (they agree on shared names)."""
        merged: dict[str, str] = {}
        for function in self.provisioned.functions.values():
            merged.update(function.env)
        return merged

    def function(self, logical_id: str) -> LocalFunction:
        """A function of the template by its logical id."""
        return self.provisioned.functions[logical_id]

    def stop(self) -> None:
        """Stop the pollers (finishing their batch), then the emulator if this stack started it."""
        for runner in self.runners:
            runner.stop()
        self.runners = []
        for function in self.provisioned.functions.values():
            REGISTRY.unregister(function)
        if self.relay is not None:
            self.relay.stop()  # forwards what it still holds before the emulator goes
            self.relay = None
        if self.owns_emulator:
            self.emulator.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _apply_overrides(provisioned: ProvisionedStack, overrides: Mapping[str, str]) -> None:
    for logical_id, handler in overrides.items():
        function = dataclasses.replace(provisioned.functions[logical_id], handler=handler)
        provisioned.functions[logical_id] = function
        provisioned.mappings = [
            dataclasses.replace(m, function=function) if m.function.logical_id == logical_id else m
            for m in provisioned.mappings
        ]


def _apply_runtime_env(provisioned: ProvisionedStack, runtime_env: Mapping[str, str]) -> None:
    """Add what Lambda's runtime, not the template, puts in a function's environment."""
    for logical_id, function in list(provisioned.functions.items()):
        env = {**function.env, **runtime_env}
        provisioned.functions[logical_id] = dataclasses.replace(function, env=env)
    provisioned.mappings = [
        dataclasses.replace(m, function=provisioned.functions[m.function.logical_id])
        for m in provisioned.mappings
    ]
