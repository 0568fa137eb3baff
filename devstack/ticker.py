"""EventBridge schedules, run locally every `every_s` seconds instead of on their real rate."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra import spec

from .lambda_runtime import ACCOUNT_ID, REGION, Invoker

log = logging.getLogger("devstack.ticker")


def rule_arn(function_name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/sendline-{function_name}-schedule"


def scheduled_event(rule: str, now: datetime | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to its Lambda target."""
    now = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule],
        "detail": {},
    }


@dataclass(frozen=True)
class ScheduledTarget:
    function: Invoker
    rule_arn: str
    name: str = "schedule"


def targets_from_spec(
    functions: dict[str, Invoker], spec_functions: Sequence[spec.Function] = spec.FUNCTIONS
) -> list[ScheduledTarget]:
    return [
        ScheduledTarget(functions[f.name], rule_arn(f.name), f.name)
        for f in spec_functions
        if f.schedule is not None
    ]


class Ticker:
    """One thread per schedule; a run that outlasts the period delays the next, never overlaps."""

    def __init__(self, targets: Sequence[ScheduledTarget], every_s: float) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.targets = list(targets)
        self.every_s = every_s
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target in self.targets:
            thread = threading.Thread(
                target=self._run, args=(target,), name=f"ticker-{target.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 60) -> None:
        """Stops scheduling; a run in progress finishes first."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()

    def tick(self) -> None:
        """Fires every schedule once, now."""
        for target in self.targets:
            self.fire(target)

    def fire(self, target: ScheduledTarget) -> None:
        result = target.function.invoke(scheduled_event(target.rule_arn))
        if result.failed:
            log.warning(
                "%s: scheduled run %s failed (%s)", target.name, result.request_id,
                result.error_type,
            )

    def _run(self, target: ScheduledTarget) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                self.fire(target)
            except Exception:
                log.exception("%s: scheduled run failed", target.name)
