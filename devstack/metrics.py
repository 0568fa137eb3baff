"""The CloudWatch metrics AWS's own services publish about the functions and the queues, published
locally to moto's CloudWatch, so Worker Health (`GET /v1/ops/worker-health`) reads the same
figures through the same GetMetricData call as on AWS.

- Lambda's, by the functions' invoker (this process): `AWS/Lambda` Invocations, Errors and
  Throttles per `FunctionName`, counted by `LambdaFunction.invoke` and sent every few seconds.
  An error is what Lambda counts as one (an init failure, an unhandled exception, a timeout, a
  return value that is not JSON); records a batch reports as failed are not errors, as on AWS.
  A throttle is an invocation that found every execution environment of its function busy and
  had to wait for one (Lambda would have refused it). The pollers run as many threads as a
  queue's maximum concurrency and the HTTP functions take turns, so locally it stays at 0.
- SQS's, by the moto process (which holds the queues): `AWS/SQS` ApproximateAgeOfOldestMessage
  per `QueueName`, worked out from moto's own queues every few seconds (AWS: every minute).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .lambda_runtime import ACCOUNT_ID, REGION

log = logging.getLogger("devstack.metrics")

PUT_METRIC_DATA_MAX = 1000  # datapoints per PutMetricData call
# Datapoints older than this are forgotten (Worker Health reads 24 hours at most).
KEEP_METRICS = timedelta(hours=25)
# SQS leaves a message received this often out of the age while younger ones wait (it moves
# such a message to the back of the queue).
AGE_RECEIVE_LIMIT = 3


def utc_naive(moment: datetime) -> datetime:
    """moto's CloudWatch keeps datapoint times as naive UTC datetimes."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class Every:
    """Runs `action` every `every_s` seconds on a thread of its own, and once more on stop."""

    def __init__(self, action: Callable[[], Any], every_s: float, name: str) -> None:
        self.action = action
        self.every_s = every_s
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.action()
        except Exception:
            log.exception("%s failed", self.name)

    def stop(self, timeout_s: float = 10) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._run_once()


# ---------------------------------------------------------------------------------------------
# Lambda's metrics


class InvocationCounts:
    """Invocations, errors and throttles per deployed function name since the last `drain`;
    an `InvocationObserver` for `LambdaFunction`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    def __call__(self, function_name: str, failed: bool, throttled: bool) -> None:
        with self._lock:
            counts = self._counts.setdefault(function_name, [0, 0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            counts[2] += int(throttled)

    def drain(self) -> dict[str, tuple[int, int, int]]:
        with self._lock:
            drained, self._counts = self._counts, {}
        return {name: (c[0], c[1], c[2]) for name, c in drained.items()}

    def add(self, counts: Mapping[str, tuple[int, int, int]]) -> None:
        """Puts drained counts back (a publish that failed is retried with the next one)."""
        with self._lock:
            for name, (invocations, errors, throttles) in counts.items():
                kept = self._counts.setdefault(name, [0, 0, 0])
                kept[0] += invocations
                kept[1] += errors
                kept[2] += throttles


def lambda_metric_data(counts: Mapping[str, tuple[int, int, int]], at: datetime) -> list[dict[str, Any]]:
    """PutMetricData entries for the AWS/Lambda namespace: each function that ran since the
    last publish gets its three figures (Lambda publishes nothing for a function left idle)."""
    entries = []
    for function_name, figures in sorted(counts.items()):
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        for metric, value in zip(("Invocations", "Errors", "Throttles"), figures, strict=True):
            entries.append({"MetricName": metric, "Dimensions": dimensions, "Timestamp": at,
                            "Value": float(value), "Unit": "Count"})
    return entries


class LambdaMetricsPublisher:
    """Counts the invocations (`counts` is the functions' observer) and sends them to CloudWatch
    every `every_s` seconds, and once more on stop."""

    def __init__(self, cloudwatch_factory: Callable[[], Any], every_s: float) -> None:
        self.counts = InvocationCounts()
        self._cloudwatch_factory = cloudwatch_factory
        self._cloudwatch: Any = None
        self._every = Every(self.publish, every_s, "lambda-metrics")

    def start(self) -> None:
        self._every.start()

    def stop(self) -> None:
        self._every.stop()

    def publish(self, now: datetime | None = None) -> int:
        """Sends what was counted since the last publish; returns how many datapoints."""
        counts = self.counts.drain()
        if not counts:
            return 0
        entries = lambda_metric_data(counts, now or datetime.now(UTC))
        try:
            if self._cloudwatch is None:
                self._cloudwatch = self._cloudwatch_factory()
            for start in range(0, len(entries), PUT_METRIC_DATA_MAX):
                self._cloudwatch.put_metric_data(Namespace="AWS/Lambda",
                                                 MetricData=entries[start:start + PUT_METRIC_DATA_MAX])
        except Exception:
            self.counts.add(counts)
            raise
        return len(entries)


# ---------------------------------------------------------------------------------------------
# SQS's metrics, in the moto process


def oldest_age_s(messages: Iterable[tuple[float, float, int]], now_ms: float) -> float:
    """ApproximateAgeOfOldestMessage of a queue whose messages are (sent at, delayed until,
    receive count) in epoch milliseconds: the oldest not delayed and not deleted (in flight
    counts), leaving out those received AGE_RECEIVE_LIMIT times while others wait; 0 when empty."""
    waiting = [(sent, receives) for sent, delayed_until, receives in messages if delayed_until <= now_ms]
    fresh = [sent for sent, receives in waiting if receives < AGE_RECEIVE_LIMIT] or [sent for sent, _ in waiting]
    if not fresh:
        return 0.0
    return round(max(0.0, (now_ms - min(fresh)) / 1000.0), 3)


def queue_ages(now_ms: float, account_id: str = ACCOUNT_ID, region: str = REGION) -> dict[str, float]:
    """Each queue of the in-process moto server and its oldest message's age in seconds."""
    from moto.sqs.models import sqs_backends

    ages = {}
    for name, queue in list(sqs_backends[account_id][region].queues.items()):
        held = [(float(m.sent_timestamp or now_ms), float(m.delayed_until), int(m.approximate_receive_count))
                for m in list(queue._messages)]
        ages[name] = oldest_age_s(held, now_ms)
    return ages


def publish_queue_ages(now: datetime | None = None, account_id: str = ACCOUNT_ID,
                       region: str = REGION) -> dict[str, float]:
    """What SQS publishes every minute, put straight into the in-process moto's CloudWatch (the
    moto process holds both; no request needed). Also forgets datapoints older than KEEP_METRICS."""
    from moto.cloudwatch.models import cloudwatch_backends

    now = now or datetime.now(UTC)
    ages = queue_ages(now.timestamp() * 1000, account_id, region)
    backend = cloudwatch_backends[account_id][region]
    at = utc_naive(now)
    if ages:
        backend.put_metric_data("AWS/SQS", [
            {"MetricName": "ApproximateAgeOfOldestMessage", "Value": age, "Unit": "Seconds",
             "Dimensions": [{"Name": "QueueName", "Value": name}], "Timestamp": at}
            for name, age in sorted(ages.items())])
    forget_before(backend, at - KEEP_METRICS)
    return ages


def forget_before(backend: Any, cutoff: datetime) -> int:
    """Drops the datapoints put before `cutoff` from the front of moto's list (they arrive in
    time order; one put late stays until those before it go). Returns how many."""
    data = backend.metric_data
    old = 0
    for datum in data:
        if utc_naive(datum.timestamp) >= cutoff:
            break
        old += 1
    del data[:old]
    return old
