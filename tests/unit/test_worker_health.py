"""Worker Health's rules: each queue's status and oldest age, each function's error rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sendline.adapters.metrics import MetricQuery, MetricsUnavailable
from sendline.adapters.queue import QueueDepth, WorkQueues, queue_name_of
from sendline.services.worker_health import (
    BACKLOG_AGE_S,
    error_rate,
    function_status,
    oldest_age,
    queue_status,
    worker_health,
)

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(("dead_letters", "age", "visibility", "status"), [
    (0, None, 180, "ok"),
    (0, 0, 180, "ok"),
    (0, BACKLOG_AGE_S, 180, "ok"),            # exactly at the limit is not past it
    (0, BACKLOG_AGE_S + 1, 180, "backlog"),
    (0, 5400, 5400, "ok"),                    # an import may be in flight for its whole visibility timeout
    (0, 5401, 5400, "backlog"),
    (1, None, 180, "dead_letters"),
    (3, 10_000, 180, "dead_letters"),         # dead letters outrank a backlog
])
def test_a_queues_status(dead_letters, age, visibility, status):
    assert queue_status(dead_letters, age, visibility) == status


@pytest.mark.parametrize(("depth", "latest", "age"), [
    (QueueDepth(visible=2, in_flight=0, delayed=0, visibility_timeout_s=30), 41.7, 41),
    (QueueDepth(visible=0, in_flight=1, delayed=0, visibility_timeout_s=30), 12.0, 12),
    (QueueDepth(visible=0, in_flight=0, delayed=5, visibility_timeout_s=30), 300.0, None),  # only delayed: nothing aged
    (QueueDepth(visible=0, in_flight=0, delayed=0, visibility_timeout_s=30), 90.0, None),   # empty: the figure is stale
    (QueueDepth(visible=3, in_flight=0, delayed=0, visibility_timeout_s=30), None, None),   # CloudWatch has none yet
])
def test_the_oldest_age(depth, latest, age):
    assert oldest_age(depth, latest) == age


@pytest.mark.parametrize(("errors", "invocations", "rate"), [(0, 0, 0.0), (3, 15, 20.0), (1, 3, 33.33), (2, 2, 100.0)])
def test_the_error_rate_is_a_percentage(errors, invocations, rate):
    assert error_rate(errors, invocations) == rate


@pytest.mark.parametrize(("errors", "throttles", "status"), [(0, 0, "ok"), (0, 2, "throttled"), (1, 2, "errors")])
def test_a_functions_status(errors, throttles, status):
    assert function_status(errors, throttles) == status


@pytest.mark.parametrize(("where", "name"), [
    ("https://sqs.us-east-1.amazonaws.com/123456789012/Sendline-SendsQueue1A2B", "Sendline-SendsQueue1A2B"),
    ("http://127.0.0.1:8789/123456789012/sendline-sends-dlq", "sendline-sends-dlq"),
    ("arn:aws:sqs:us-east-1:123456789012:sendline-sends", "sendline-sends"),
])
def test_a_queues_name_is_the_last_part_of_its_url_or_arn(where, name):
    assert queue_name_of(where) == name


class FakeSqs:
    def __init__(self, depths):
        self.depths = depths

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        visible, in_flight, delayed, visibility = self.depths[QueueUrl]
        return {"Attributes": {"ApproximateNumberOfMessages": str(visible),
                               "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                               "ApproximateNumberOfMessagesDelayed": str(delayed),
                               "VisibilityTimeout": str(visibility)}}


class FakeMetrics:
    def __init__(self, points=None, refuse=None):
        self.points, self.refuse, self.asked = points or {}, refuse, []

    def datapoints(self, queries, start, end, period_s=60):
        self.asked.append((list(queries), start, end))
        if self.refuse:
            raise MetricsUnavailable(self.refuse)
        return {q: self.points.get(q, []) for q in queries}


URLS = {"sends": "https://sqs/1/prod-sends"}
DLQS = {"sends": "https://sqs/1/prod-sends-dlq"}


def _at(minutes_ago):
    return NOW - timedelta(minutes=minutes_ago)


def test_figures_come_from_the_queue_attributes_and_the_newest_age():
    queues = WorkQueues(FakeSqs({URLS["sends"]: (4, 2, 1, 180), DLQS["sends"]: (1, 1, 0, 30)}), URLS, DLQS)
    age = MetricQuery("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "prod-sends", "Maximum")
    invocations = MetricQuery("AWS/Lambda", "Invocations", "FunctionName", "prod-send-worker", "Sum")
    errors = MetricQuery("AWS/Lambda", "Errors", "FunctionName", "prod-send-worker", "Sum")
    metrics = FakeMetrics({age: [(_at(1), 61.0), (_at(2), 400.0)],
                           invocations: [(_at(1), 6.0), (_at(9), 2.0)], errors: [(_at(9), 1.0)]})

    health = worker_health(queues, metrics, {"send_worker": "prod-send-worker"}, NOW, window_minutes=10)

    assert health == {
        "queues": [{"name": "sends", "queue_name": "prod-sends", "visible": 4, "in_flight": 2, "delayed": 1,
                    "oldest_age_s": 61, "dead_letters": 2, "status": "dead_letters"}],
        "functions": [{"name": "send_worker", "function_name": "prod-send-worker", "invocations": 8, "errors": 1,
                       "throttles": 0, "error_rate": 12.5, "status": "errors"}],
        "window_minutes": 10, "metrics_error": None, "generated_at": "2026-12-03T18:00:00.000Z"}
    (asked, start, end), = metrics.asked
    assert (len(asked), start, end) == (4, _at(10), NOW)


def test_without_cloudwatch_the_queue_figures_still_come():
    queues = WorkQueues(FakeSqs({URLS["sends"]: (4, 0, 0, 180), DLQS["sends"]: (0, 0, 0, 30)}), URLS, DLQS)

    health = worker_health(queues, FakeMetrics(refuse="ThrottlingException"), {"send_worker": "w"}, NOW)

    assert health["metrics_error"] == "ThrottlingException"
    assert health["queues"][0]["visible"] == 4
    assert (health["queues"][0]["oldest_age_s"], health["queues"][0]["status"]) == (None, "ok")
    assert health["functions"] == [{"name": "send_worker", "function_name": "w", "invocations": None, "errors": None,
                                    "throttles": None, "error_rate": None, "status": "unknown"}]
