"""Worker Health: how the queues and the functions that work them are doing, in one call.

Depths come from each queue's SQS attributes (as of now); the age of each queue's oldest message
and each function's invocations, errors and throttles from CloudWatch, where SQS and Lambda
publish them (on AWS; the local stack publishes the same metrics: docs/operations.md). Reads a
bounded set: three attributes a queue, one GetMetricData call for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from sendline.adapters.metrics import CloudWatchMetrics, MetricQuery, MetricsUnavailable
from sendline.adapters.queue import QueueDepth, WorkQueues, queue_name_of
from sendline.domain.clock import iso

logger = Logger(child=True)

WINDOW_MINUTES = 15
MAX_WINDOW_MINUTES = 24 * 60
# A queue is backed up when its oldest message waited longer than this, and longer than the
# queue's visibility timeout (a message being worked on may be in flight that long).
BACKLOG_AGE_S = 5 * 60
LAMBDA_FIGURES = ("Invocations", "Errors", "Throttles")


def oldest_age(depth: QueueDepth, latest_age_s: float | None) -> int | None:
    """The oldest message's age in whole seconds: CloudWatch's latest figure, or None when the
    queue holds nothing to be aged (CloudWatch's figure would be stale) or CloudWatch has none."""
    if depth.held == 0 or latest_age_s is None:
        return None
    return int(latest_age_s)


def queue_status(dead_letters: int, oldest_age_s: int | None, visibility_timeout_s: int) -> str:
    """`dead_letters` when any message failed every retry, `backlog` when the oldest message
    waited past BACKLOG_AGE_S and the visibility timeout, otherwise `ok`."""
    if dead_letters > 0:
        return "dead_letters"
    if oldest_age_s is not None and oldest_age_s > max(BACKLOG_AGE_S, visibility_timeout_s):
        return "backlog"
    return "ok"


def error_rate(errors: int, invocations: int) -> float:
    """Errors as a percentage of invocations, to two places."""
    return round(100.0 * errors / invocations, 2) if invocations else 0.0


def function_status(errors: int, throttles: int) -> str:
    if errors:
        return "errors"
    if throttles:
        return "throttled"
    return "ok"


def worker_health(queues: WorkQueues, metrics: CloudWatchMetrics, function_names: Mapping[str, str],
                  now: datetime, window_minutes: int = WINDOW_MINUTES) -> dict[str, Any]:
    """`function_names` maps each function's name in the spec to its deployed name."""
    ages = {name: MetricQuery("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName",
                              queue_name_of(url), "Maximum")
            for name, url in queues.queue_urls.items()}
    lambda_queries = {(name, figure): MetricQuery("AWS/Lambda", figure, "FunctionName", deployed, "Sum")
                      for name, deployed in function_names.items() for figure in LAMBDA_FIGURES}
    start = now - timedelta(minutes=window_minutes)
    try:
        points = metrics.datapoints([*ages.values(), *lambda_queries.values()], start, now)
        metrics_error = None
    except MetricsUnavailable as exc:
        logger.warning("CloudWatch metrics unavailable", extra={"reason": str(exc)})
        points, metrics_error = None, str(exc)

    rows = []
    for name in queues.names:
        url, dlq_url = queues.queue_urls.get(name), queues.dlq_urls.get(name)
        depth = queues.depth(url) if url else QueueDepth(0, 0, 0, 0)
        dead = queues.depth(dlq_url).held if dlq_url else 0
        latest = points[ages[name]][0][1] if points and name in ages and points[ages[name]] else None
        age = oldest_age(depth, latest)
        rows.append({"name": name, "queue_name": queue_name_of(url) if url else None,
                     "visible": depth.visible, "in_flight": depth.in_flight, "delayed": depth.delayed,
                     "oldest_age_s": age, "dead_letters": dead,
                     "status": queue_status(dead, age, depth.visibility_timeout_s)})

    functions = []
    for name, deployed in sorted(function_names.items()):
        row: dict[str, Any] = {"name": name, "function_name": deployed}
        if points is None:
            row.update({"invocations": None, "errors": None, "throttles": None, "error_rate": None,
                        "status": "unknown"})
        else:
            invocations, errors, throttles = (round(sum(v for _, v in points[lambda_queries[(name, figure)]]))
                                              for figure in LAMBDA_FIGURES)
            row.update({"invocations": invocations, "errors": errors, "throttles": throttles,
                        "error_rate": error_rate(errors, invocations), "status": function_status(errors, throttles)})
        functions.append(row)

    return {"queues": rows, "functions": functions, "window_minutes": window_minutes,
            "metrics_error": metrics_error, "generated_at": iso(now)}
