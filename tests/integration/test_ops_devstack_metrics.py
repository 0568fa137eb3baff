"""What the local stack publishes for Worker Health: Lambda's invocations, errors and throttles
from the invoker, SQS's age of the oldest message from moto's queues, read back with the same
GetMetricData call the ops_api function makes."""

from __future__ import annotations

import json
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.sqs.models import sqs_backends

from devstack import resources
from devstack.lambda_runtime import LambdaFunction
from devstack.metrics import (
    InvocationCounts,
    LambdaMetricsPublisher,
    forget_before,
    lambda_metric_data,
    oldest_age_s,
    publish_queue_ages,
    utc_naive,
)
from infra import spec
from sendline.adapters.metrics import CloudWatchMetrics, MetricQuery

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = resources.start_moto(port=0)
    yield url
    server.stop()


def figures(moto_url: str, function_name: str, start: datetime, end: datetime) -> dict[str, int]:
    metrics = CloudWatchMetrics(resources.aws_client("cloudwatch", moto_url))
    queries = {name: MetricQuery("AWS/Lambda", name, "FunctionName", function_name, "Sum")
               for name in ("Invocations", "Errors", "Throttles")}
    found = metrics.datapoints(list(queries.values()), start, end)
    return {name: int(sum(v for _, v in found[q])) for name, q in queries.items()}


def test_the_invoker_counts_invocations_errors_and_throttles(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text(textwrap.dedent("""
        import threading
        holding, release = threading.Event(), threading.Event()

        def handler(event, context):
            if event.get("hold"):
                holding.set()
                release.wait(10)
            if event.get("fail"):
                raise ValueError("bad event")
            return {"batchItemFailures": [{"itemIdentifier": "m1"}]} if event.get("partial") else {}
    """))
    heard: list[tuple[str, bool, bool]] = []
    function = LambdaFunction("send_worker", handler, concurrency=1, observer=lambda *call: heard.append(call))

    # Given one invocation holding the only environment
    holder = threading.Thread(target=function.invoke, args=({"hold": True},))
    holder.start()
    while not function.environments:
        time.sleep(0.01)
    environment = function.environments[0].module
    assert environment.holding.wait(5)
    # When a second one arrives meanwhile, then one fails and one reports a record failed
    waiter = threading.Thread(target=function.invoke, args=({},))
    waiter.start()
    time.sleep(0.2)
    environment.release.set()
    holder.join(5)
    waiter.join(5)
    function.invoke({"fail": True})
    function.invoke({"partial": True})

    # Then the second waited as a throttle, the exception is an error, a failed record is not
    assert heard == [("sendline-send_worker", False, False), ("sendline-send_worker", False, True),
                     ("sendline-send_worker", True, False), ("sendline-send_worker", False, False)]


def test_counts_are_published_as_lambdas_metrics_and_read_back_exactly(moto_url: str) -> None:
    name = f"sendline-fn-{uuid.uuid4().hex[:8]}"
    publisher = LambdaMetricsPublisher(resources.client_factory("cloudwatch", moto_url), every_s=60)
    now = datetime.now(UTC)
    for failed, throttled in [(False, False), (True, False), (False, True), (False, False)]:
        publisher.counts(name, failed, throttled)

    assert publisher.publish(now - timedelta(minutes=2)) == 3
    publisher.counts(name, True, False)
    assert publisher.publish(now - timedelta(minutes=1)) == 3
    assert publisher.publish(now) == 0  # nothing ran since: nothing published, as Lambda does

    assert figures(moto_url, name, now - timedelta(minutes=15), now) == {"Invocations": 5, "Errors": 2, "Throttles": 1}
    assert figures(moto_url, name, now - timedelta(seconds=90), now) == {"Invocations": 1, "Errors": 1, "Throttles": 0}


def test_a_publish_that_fails_keeps_its_counts_for_the_next(moto_url: str) -> None:
    clients = iter([RuntimeError("moto is restarting"), resources.aws_client("cloudwatch", moto_url)])

    def factory() -> Any:
        client = next(clients)
        if isinstance(client, Exception):
            raise client
        return client

    name = f"sendline-fn-{uuid.uuid4().hex[:8]}"
    publisher = LambdaMetricsPublisher(factory, every_s=60)
    publisher.counts(name, False, False)
    now = datetime.now(UTC)

    with pytest.raises(RuntimeError):
        publisher.publish(now - timedelta(minutes=1))
    publisher.counts(name, True, False)
    assert publisher.publish(now - timedelta(minutes=1)) == 3

    assert figures(moto_url, name, now - timedelta(minutes=5), now) == {"Invocations": 2, "Errors": 1, "Throttles": 0}


def test_lambda_metric_data_is_three_counts_per_function_that_ran() -> None:
    at = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    counts = InvocationCounts()
    counts("sendline-b", False, False)
    counts("sendline-a", True, True)

    entries = lambda_metric_data(counts.drain(), at)

    assert [(e["Dimensions"][0]["Value"], e["MetricName"], e["Value"]) for e in entries] == [
        ("sendline-a", "Invocations", 1.0), ("sendline-a", "Errors", 1.0), ("sendline-a", "Throttles", 1.0),
        ("sendline-b", "Invocations", 1.0), ("sendline-b", "Errors", 0.0), ("sendline-b", "Throttles", 0.0)]
    assert {(e["Unit"], e["Timestamp"]) for e in entries} == {("Count", at)}
    assert counts.drain() == {}


@pytest.mark.parametrize(("messages", "age"), [
    ([], 0.0),
    ([(1_000, 0, 0), (4_000, 0, 1)], 9.0),          # the oldest, in flight or not
    ([(1_000, 20_000, 0), (6_000, 0, 0)], 4.0),     # a delayed message is not aged yet
    ([(1_000, 0, 3), (2_000, 0, 0)], 8.0),          # received three times: SQS ages the next one
    ([(1_000, 0, 3), (2_000, 0, 5)], 9.0),          # unless every one was
])
def test_the_age_of_the_oldest_message_follows_sqs(messages: list[tuple[int, int, int]], age: float) -> None:
    assert oldest_age_s(messages, now_ms=10_000) == age


def test_the_moto_process_publishes_each_queues_oldest_age(moto_url: str) -> None:
    sqs = resources.aws_client("sqs", moto_url)
    queue = resources.create_queue(sqs, spec.Queue(name=f"t{uuid.uuid4().hex[:10]}", visibility_timeout_s=30,
                                                   max_receive_count=3))
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    sqs.send_message(QueueUrl=queue.url, MessageBody="later", DelaySeconds=600)
    sent = min(m.sent_timestamp for m in sqs_backends[ACCOUNT][REGION].queues[queue.queue_name]._messages)
    now = datetime.fromtimestamp((sent + 42_000) / 1000, UTC)

    ages = publish_queue_ages(now)

    assert (ages[queue.queue_name], ages[queue.dlq_name]) == (42.0, 0.0)
    metrics = CloudWatchMetrics(resources.aws_client("cloudwatch", moto_url))
    query = MetricQuery("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue.queue_name, "Maximum")
    points = metrics.datapoints([query], now - timedelta(minutes=5), now + timedelta(minutes=1))[query]
    assert [value for _, value in points] == [42.0]


def test_datapoints_older_than_kept_are_forgotten_from_the_front() -> None:
    class Datum:
        def __init__(self, minutes: int) -> None:
            self.timestamp = utc_naive(datetime(2026, 12, 3, 18, minutes, tzinfo=UTC))

    class Backend:
        def __init__(self) -> None:
            self.metric_data = [Datum(1), Datum(2), Datum(5), Datum(3)]

    backend = Backend()

    assert forget_before(backend, utc_naive(datetime(2026, 12, 3, 18, 4, tzinfo=UTC))) == 2
    assert [d.timestamp.minute for d in backend.metric_data] == [5, 3]


def test_get_metric_data_keeps_to_the_querys_namespace(moto_url: str) -> None:
    cloudwatch = resources.aws_client("cloudwatch", moto_url)
    name = f"sendline-fn-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    for namespace, value in (("AWS/Lambda", 2), ("Sendline", 40)):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": name}], "Value": value,
            "Timestamp": now - timedelta(minutes=1)}])

    assert figures(moto_url, name, now - timedelta(minutes=5), now)["Errors"] == 2


def test_the_functions_are_told_the_other_functions_deployed_names() -> None:
    queue = resources.QueueResources("sends", "http://q/sends", "arn:q", "http://q/dlq", "arn:d")

    environment = resources.function_environment(
        endpoint_url="http://127.0.0.1:1", queues={"sends": queue}, twilio_api_base="http://127.0.0.1:2",
        twilio_account_sid="AC1", twilio_auth_token="tok", public_api_url="http://127.0.0.1:3",
        operator_token_sha256="abc")

    assert json.loads(environment[spec.FUNCTION_NAMES_ENV]) == {
        f.name: f"sendline-{f.name}" for f in spec.FUNCTIONS if f.name != "ops_api"}
    assert (environment[spec.queue_url_env("sends")], environment[spec.dlq_url_env("sends")]) == (
        "http://q/sends", "http://q/dlq")
