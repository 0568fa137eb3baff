"""Waiting for something a running stack does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.25,
             describe: Callable[[], Any] | None = None, what: str = "") -> Any:
    """`check()`'s first truthy value, asked every `interval_s`; an AssertionError naming `what`
    (and what `describe()` says then) when none comes within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = ": ".join(str(part) for part in (what, describe() if describe else "") if part)
            raise AssertionError(f"condition not met in {timeout_s} s" + (f": {detail}" if detail else ""))
        time.sleep(interval_s)
