"""Where local pollers run: a thread of this process, or a pool of worker processes.

A mapping with `ScalingConfig.MaximumConcurrency` in the template is one that scales out on AWS
(the classify function): locally it gets `min(workers, MaximumConcurrency)` spawned processes, each
a long-lived "warm container" that imports the handler once, so the model loads once per process,
not per batch. Other mappings (ingest) get one thread here. A worker process that dies (a crash,
`kill -9`, or past the function's `MemorySize`: `memory_size.py`) is replaced, as Lambda replaces
a dead execution environment; its in-flight messages come back after the visibility timeout.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from pipeline.local.functions import REGISTRY, EventSourceMapping, LambdaContext, load_handler
from pipeline.local.memory_size import MemorySize
from pipeline.local.poller import PollerOptions, SqsPoller
from pipeline.local.quiet import native_stderr_silenced

logger = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
_JOIN_TIMEOUT_S = 10.0
_PROCESS_GRACE_S = 3.0
"""A worker gets this long to finish its batch at shutdown; then it is terminated, which loses
nothing: its messages come back after their visibility timeout, as after a Lambda timeout."""
_QUICK_DEATH_S = 5.0
_MAX_BACKOFF_S = 30.0


def _sqs_client(endpoint_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint_url)


def run_worker_process(
    mapping: EventSourceMapping,
    env: Mapping[str, str],
    options: PollerOptions,
    stop: Any,
    busy_since: Any,
) -> None:
    """Body of one worker process: become the function's environment, then poll until stopped.

    `busy_since` (shared with the supervisor) holds the wall-clock start of the batch in hand,
    0 when idle: that is how the supervisor enforces the function's `Timeout`.
    """
    # Ctrl-C reaches the whole process group; the parent stops workers through `stop`, after
    # their current batch, so a keyboard interrupt must not tear a batch in half here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    logging.basicConfig(level=os.environ.get("LAMBDAFLOW_LOCAL_LOG_LEVEL", "WARNING"))
    memory = MemorySize(mapping.function.name, mapping.function.memory_mb)
    memory.watch()  # from before the handler loads: Lambda counts its init too
    with native_stderr_silenced():  # the model's load: LiteRT's INFO line, not for people
        handler = load_handler(mapping.function)

    def invoke(event: dict[str, Any]) -> Any:
        busy_since.value = time.time()
        try:
            return handler(event, LambdaContext(mapping.function))
        finally:
            busy_since.value = 0.0
            memory.check()  # a batch over the limit must not be settled: it died on AWS

    poller = SqsPoller(
        mapping, sqs=_sqs_client(env["AWS_ENDPOINT_URL"]), invoke=invoke, options=options
    )
    poller.run(stop)


@dataclass(slots=True)
class _Worker:
    process: Any
    busy_since: Any
    started_at: float = field(default_factory=time.monotonic)

    def has_timed_out(self, timeout_s: float) -> bool:
        busy = self.busy_since.value
        return bool(busy) and time.time() - busy > timeout_s


@dataclass(slots=True)
class ProcessPool:
    """N supervised worker processes polling one mapping.

    The supervisor replaces a worker that dies, and kills one whose batch runs past the
    function's `Timeout` — Lambda's semantics: the batch's messages come back after their
    visibility timeout and count towards `maxReceiveCount`.
    """

    mapping: EventSourceMapping
    env: Mapping[str, str]
    options: PollerOptions
    size: int
    workers: list[_Worker] = field(default_factory=list)
    _stop: Any = field(default_factory=_SPAWN.Event)
    _supervisor: threading.Thread | None = None

    @property
    def processes(self) -> list[Any]:
        """The live worker processes (for a fault test that kills one)."""
        return [worker.process for worker in self.workers]

    def start(self) -> None:
        """Spawn the workers and a thread that supervises them."""
        self.workers = [self._spawn() for _ in range(self.size)]
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"supervise-{self.mapping.logical_id}", daemon=True
        )
        self._supervisor.start()

    def _spawn(self) -> _Worker:
        busy_since = _SPAWN.Value("d", 0.0)
        process = _SPAWN.Process(
            target=run_worker_process,
            args=(self.mapping, dict(self.env), self.options, self._stop, busy_since),
            name=f"{self.mapping.function.logical_id}-worker",
            daemon=True,
        )
        process.start()
        return _Worker(process=process, busy_since=busy_since)

    def _supervise(self) -> None:
        quick_deaths = 0
        timeout_s = self.mapping.function.timeout_s
        while not self._stop.wait(0.5):
            for index, worker in enumerate(self.workers):
                if worker.process.is_alive() and worker.has_timed_out(timeout_s):
                    logger.warning("worker %s timed out after %ss", worker.process.pid, timeout_s)
                    worker.process.kill()
                    worker.process.join()
                if worker.process.is_alive() or self._stop.is_set():
                    continue
                lived_s = time.monotonic() - worker.started_at
                # A worker that dies at once (an import error, say) is retried with backoff,
                # as Lambda does with a failing init, instead of a hot respawn loop.
                quick_deaths = quick_deaths + 1 if lived_s < _QUICK_DEATH_S else 0
                logger.warning(
                    "worker %s exited with %s", worker.process.pid, worker.process.exitcode
                )
                if self._stop.wait(min(_MAX_BACKOFF_S, 0.5 * 2**quick_deaths) - 0.5):
                    return
                self.workers[index] = self._spawn()

    def stop(self) -> None:
        """Ask every worker to finish its batch, then end stragglers."""
        self._stop.set()
        if self._supervisor:
            self._supervisor.join()
        deadline = time.monotonic() + _PROCESS_GRACE_S
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join()


@dataclass(slots=True)
class ThreadPoller:
    """One poller in a thread of this process, invoking through the shared registry."""

    mapping: EventSourceMapping
    endpoint_url: str
    options: PollerOptions
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling in a daemon thread."""
        function = self.mapping.function
        REGISTRY.register(function)

        def invoke(event: dict[str, Any]) -> Any:
            return REGISTRY.handler_of(function)(event, LambdaContext(function))

        poller = SqsPoller(
            self.mapping, sqs=_sqs_client(self.endpoint_url), invoke=invoke, options=self.options
        )
        self._thread = threading.Thread(
            target=poller.run,
            args=(self._stop,),
            name=f"poll-{self.mapping.logical_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current batch."""
        self._stop.set()
        if self._thread:
            self._thread.join(_JOIN_TIMEOUT_S)


def start_pollers(
    mappings: list[EventSourceMapping],
    *,
    env: Mapping[str, str],
    workers: int,
    options: PollerOptions,
) -> list[ProcessPool | ThreadPoller]:
    """Start one poller (group) per mapping; see the module docstring for the rule."""
    started: list[ProcessPool | ThreadPoller] = []
    for mapping in mappings:
        runner: ProcessPool | ThreadPoller
        if mapping.max_concurrency is not None:
            size = max(1, min(workers, mapping.max_concurrency))
            runner = ProcessPool(
                mapping=mapping, env={**env, **mapping.function.env}, options=options, size=size
            )
        else:
            runner = ThreadPoller(
                mapping=mapping, endpoint_url=env["AWS_ENDPOINT_URL"], options=options
            )
        runner.start()
        started.append(runner)
    return started
