"""SQS pollers: real batch events, partial batch failures, redrive to the dead-letter queue."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack import resources
from devstack.lambda_runtime import InvocationResult
from devstack.pollers import SqsEventSource, messages_to_delete
from devstack.state import queued_messages
from infra import spec


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = resources.start_moto(port=0)
    yield url
    server.stop()


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return resources.aws_client("sqs", moto_url)


@pytest.fixture
def queue(sqs: Any) -> resources.QueueResources:
    """A queue that redelivers after 1 s and dead-letters on the second failed receive."""
    name = f"t{uuid.uuid4().hex[:10]}"
    return resources.create_queue(
        sqs, spec.Queue(name=name, visibility_timeout_s=1, max_receive_count=2)
    )


class RecordingFunction:
    """Fails the records whose body starts with `fail`, or raises when `explode` is set."""

    def __init__(self, explode: bool = False) -> None:
        self.explode = explode
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def invoke(self, event: Any) -> InvocationResult:
        with self.lock:
            self.events.append(event)
        if self.explode:
            return InvocationResult("r", 1.0, None, "RuntimeError", "boom")
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"].startswith("fail")
        ]
        return InvocationResult("r", 1.0, {"batchItemFailures": failures})

    def bodies(self) -> list[str]:
        with self.lock:
            return [r["body"] for e in self.events for r in e["Records"]]


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def event_source(
    function: RecordingFunction, queue: resources.QueueResources, moto_url: str, **overrides: Any
) -> SqsEventSource:
    options: dict[str, Any] = {
        "queue_url": queue.url,
        "queue_arn": queue.arn,
        "batch_size": 10,
        "concurrency": 2,
        "client_factory": resources.client_factory("sqs", moto_url),
    }
    options.update(overrides)
    return SqsEventSource(function, **options)


def test_successes_are_deleted_and_a_poison_message_lands_in_the_dlq(
    sqs: Any, queue: resources.QueueResources, moto_url: str
) -> None:
    # Given two good messages and one the consumer always reports as failed
    for body in ("ok-1", "fail-1", "ok-2"):
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    function = RecordingFunction()
    source = event_source(function, queue, moto_url)

    # When the pollers run until the failing message has left the queue
    source.start()
    try:
        wait_until(lambda: len(queued_messages(queue.dlq_name)) == 1)
        wait_until(lambda: not queued_messages(queue.queue_name))
    finally:
        source.stop()

    # Then each good message was processed once, the bad one max_receive_count times,
    # and only the bad one is in the DLQ
    bodies = function.bodies()
    assert sorted(bodies) == ["fail-1", "fail-1", "ok-1", "ok-2"]
    (dead,) = queued_messages(queue.dlq_name)
    assert dead["body"] == "fail-1"
    assert dead["receive_count"] == 2


def test_a_failed_invocation_deletes_nothing(
    sqs: Any, queue: resources.QueueResources, moto_url: str
) -> None:
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    source = event_source(RecordingFunction(explode=True), queue, moto_url, concurrency=1)
    received = sqs.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]

    result = source.process(sqs, received)

    assert result.failed
    assert sorted(m["body"] for m in queued_messages(queue.queue_name)) == ["a", "b"]


def test_records_have_the_shape_lambda_gives_them(
    sqs: Any, queue: resources.QueueResources, moto_url: str
) -> None:
    # Given a message with string, number and binary attributes
    sqs.send_message(
        QueueUrl=queue.url,
        MessageBody='{"message_id": "m1"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "initial"},
            "step": {"DataType": "Number", "StringValue": "2"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    function = RecordingFunction()
    source = event_source(function, queue, moto_url, concurrency=1)

    # When it is polled
    source.start()
    try:
        wait_until(lambda: function.events != [])
    finally:
        source.stop()

    # Then the invocation gets one record in Lambda's SQS event shape
    (event,) = function.events
    (record,) = event["Records"]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    }
    assert record["body"] == '{"message_id": "m1"}'
    assert record["md5OfBody"] == hashlib.md5(b'{"message_id": "m1"}').hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "initial", "stringListValues": [], "binaryListValues": [],
                 "dataType": "String"},
        "step": {"stringValue": "2", "stringListValues": [], "binaryListValues": [],
                 "dataType": "Number"},
        "blob": {"binaryValue": base64.b64encode(b"\x00\xff").decode(), "stringListValues": [],
                 "binaryListValues": [], "dataType": "Binary"},
    }


def batch(*ids: str) -> list[dict[str, str]]:
    return [{"MessageId": i, "ReceiptHandle": f"rh-{i}"} for i in ids]


@pytest.mark.parametrize(
    ("payload", "deleted"),
    [
        (None, ["a", "b", "c"]),
        ({}, ["a", "b", "c"]),
        ({"batchItemFailures": []}, ["a", "b", "c"]),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["a", "c"]),
        # An identifier that is empty or not in the batch fails the whole batch, as in Lambda.
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, []),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, []),
        ({"batchItemFailures": "b"}, []),
    ],
)
def test_which_messages_are_deleted_after_a_batch(payload: Any, deleted: list[str]) -> None:
    result = InvocationResult("r", 1.0, payload)

    assert [m["MessageId"] for m in messages_to_delete(batch("a", "b", "c"), result)] == deleted
