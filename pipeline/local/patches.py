"""How every emulator rule changes moto: in place, once per process, under one lock.

moto's classes are shared by the server's threads and by every stack a process starts (the tests
start several on one emulator), so each rule replaces a method once: installing it again must not
wrap its own wrapper.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_applied: set[tuple[object, str, str]] = set()


def patch_once(owner: object, name: str, make: Callable[[Any], Any], *, rule: str) -> bool:
    """Replace `owner.name` with `make(original)`, unless `rule` has replaced it already.

    Returns whether it replaced it now. `rule` names the change (its module, usually), so two
    rules can each wrap the same method once.
    """
    key = (owner, name, rule)  # classes and modules hash by identity, and live as long
    with _lock:
        if key in _applied:
            return False
        setattr(owner, name, make(getattr(owner, name)))
        _applied.add(key)
        return True
