"""`ast.parse` from two threads at once, with the interleaving forced, fails on neither."""

from __future__ import annotations

import ast
import gc
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from pipeline.local.parse_lock import ast_build_is_thread_safe, install_parse_lock

SOURCE = "\n".join(f"def rule_{i}(a):\n    return [a + {i}]" for i in range(50))
PARSE_CODE = getattr(ast.parse, "__wrapped__", ast.parse).__code__


def _inside_parse(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code is PARSE_CODE:
            return True
        frame = frame.f_back
    return False


@pytest.fixture
def a_collection_mid_parse_lets_another_thread_parse() -> Iterator[dict[str, Any]]:
    """The first garbage collection inside this thread's parse waits for another thread's parse.

    That is the interleaving CPython's bug needs: the tree's build pauses in a collection (a
    threshold of 1 collects on nearly every allocation), the GIL passes, another parse runs.
    The wait is bounded, so a lock that holds the other thread back ends it instead of hanging.
    """
    parsing_thread = threading.current_thread()
    go, other_done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {"paused_mid_parse": False, "order": [], "other_done": other_done}

    def other() -> None:
        go.wait(10)
        ast.parse("x = 1")
        seen["order"].append("other")
        other_done.set()

    def pause_mid_parse(phase: str, _info: dict[str, int]) -> None:
        if phase != "start" or seen["paused_mid_parse"]:
            return
        if threading.current_thread() is not parsing_thread:
            return
        if not _inside_parse(sys._getframe(1)):
            return
        seen["paused_mid_parse"] = True
        go.set()
        other_done.wait(0.5)

    thread = threading.Thread(target=other)
    thread.start()
    thresholds = gc.get_threshold()
    gc.callbacks.append(pause_mid_parse)
    gc.set_threshold(1)
    try:
        yield seen
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(pause_mid_parse)
        go.set()
        thread.join(10)


def test_a_parse_paused_mid_build_survives_another_thread_s_parse(
    a_collection_mid_parse_lets_another_thread_parse: dict[str, Any],
) -> None:
    # GIVEN the lock the emulator installs
    install_parse_lock()
    seen = a_collection_mid_parse_lets_another_thread_parse

    # WHEN this thread's parse pauses mid-build and another thread parses meanwhile
    tree = ast.parse(SOURCE)
    seen["order"].append("this")
    seen["other_done"].wait(10)

    # THEN the parse completes (3.11.7 without the lock: SystemError, recursion depth mismatch)
    assert seen["paused_mid_parse"], "no collection ran inside the parse; the test forced nothing"
    assert len(tree.body) == 50
    if not ast_build_is_thread_safe():
        # AND on an interpreter that needs the lock, the other parse waited for this one
        assert seen["order"] == ["this", "other"]


@pytest.mark.parametrize(
    ("version", "safe"),
    [
        ((3, 11, 7), False),
        ((3, 11, 8), True),
        ((3, 12, 1), False),
        ((3, 12, 2), True),
        ((3, 13, 0), True),
    ],
)
def test_the_lock_is_needed_only_before_the_fix(version: tuple[int, int, int], safe: bool) -> None:
    assert ast_build_is_thread_safe(version) is safe
