"""SQS event source mappings: long-poll a queue, invoke a consumer with a batch, delete what it did.

Like Lambda's pollers, a batch is deleted only after the invocation returns; with
ReportBatchItemFailures the records named in `batchItemFailures` stay on the queue, reappear
after the visibility timeout and, after `maxReceiveCount` receives, move to the dead-letter
queue (moto performs that redrive on receive, as SQS does).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .lambda_runtime import REGION, InvocationResult, Invoker

log = logging.getLogger("devstack.pollers")

SQS_MAX_MESSAGES_PER_RECEIVE = 10
LONG_POLL_SECONDS = 1


def lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SQS API message attributes in the shape Lambda puts them in an event record."""
    converted: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        record: dict[str, Any] = {}
        if "StringValue" in attribute:
            record["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:
            value = attribute["BinaryValue"]
            record["binaryValue"] = (
                base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            )
        record["stringListValues"] = list(attribute.get("StringListValues", []))
        record["binaryListValues"] = [
            base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v
            for v in attribute.get("BinaryListValues", [])
        ]
        record["dataType"] = attribute["DataType"]
        converted[name] = record
    return converted


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """One `Records[]` entry of the event Lambda builds from a received SQS message."""
    body = message["Body"]
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {k: str(v) for k, v in message.get("Attributes", {}).items()},
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def sqs_event(
    messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str = REGION
) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def messages_to_delete(
    messages: Sequence[Mapping[str, Any]], result: InvocationResult
) -> list[Mapping[str, Any]]:
    """The messages Lambda deletes after an invocation with ReportBatchItemFailures.

    A failed invocation deletes nothing. A response naming an identifier that is missing, empty
    or not in the batch is treated as a failure of the whole batch, as Lambda does.
    """
    if result.failed:
        return []
    payload = result.payload
    if not isinstance(payload, dict):
        return list(messages)
    failures = payload.get("batchItemFailures")
    if failures is None:
        return list(messages)
    if not isinstance(failures, list):
        return []
    ids_in_batch = {m["MessageId"] for m in messages}
    failed_ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in ids_in_batch:
            return []
        failed_ids.add(identifier)
    return [m for m in messages if m["MessageId"] not in failed_ids]


class SqsEventSource:
    """`concurrency` poller threads feeding one function from one queue."""

    def __init__(
        self,
        function: Invoker,
        *,
        queue_url: str,
        queue_arn: str,
        batch_size: int,
        concurrency: int,
        client_factory: Callable[[], Any],
        batching_window_s: float = 0,
        region: str = REGION,
        name: str = "poller",
    ) -> None:
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.batching_window_s = batching_window_s
        self.region = region
        self.name = name
        self._client_factory = client_factory
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # moto checks a message's visibility and marks it received without a lock, so two
        # concurrent receives can both get it; SQS makes that rare, and serialising receives
        # here keeps local runs repeatable. Invocations still run concurrently.
        self._receive_lock = threading.Lock()

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._run, name=f"{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Stops receiving without waiting; `stop` then waits for batches in progress."""
        self._stopping.set()

    def stop(self, timeout_s: float = 60) -> None:
        """Stops receiving; batches already received finish and are deleted first."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _run(self) -> None:
        client = self._client_factory()
        while not self._stopping.is_set():
            try:
                messages = self._receive_batch(client)
                if messages:
                    self.process(client, messages)
            except Exception:
                if self._stopping.is_set():
                    break
                log.exception("%s: polling %s failed", self.name, self.queue_url)
                self._stopping.wait(1)

    def _receive_batch(self, client: Any) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.batching_window_s
        while len(batch) < self.batch_size and not self._stopping.is_set():
            wanted = min(SQS_MAX_MESSAGES_PER_RECEIVE, self.batch_size - len(batch))
            with self._receive_lock:
                if self._stopping.is_set():
                    break
                response = client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=LONG_POLL_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            batch.extend(response.get("Messages", []))
            if not batch and self.batching_window_s <= 0:
                break
            if time.monotonic() >= window_ends:
                break
        return batch

    def process(self, client: Any, messages: list[dict[str, Any]]) -> InvocationResult:
        """Invokes the function with `messages` and deletes the ones it did not report failed."""
        result = self.function.invoke(sqs_event(messages, self.queue_arn, self.region))
        done = messages_to_delete(messages, result)
        for start in range(0, len(done), SQS_MAX_MESSAGES_PER_RECEIVE):
            chunk = done[start : start + SQS_MAX_MESSAGES_PER_RECEIVE]
            response = client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                log.warning("%s: delete failed: %s", self.name, failure)
        if result.failed:
            log.warning(
                "%s: invocation %s failed (%s); %d message(s) stay on the queue",
                self.name,
                result.request_id,
                result.error_type,
                len(messages),
            )
        elif len(done) < len(messages):
            log.info(
                "%s: %d of %d message(s) reported as failures",
                self.name,
                len(messages) - len(done),
                len(messages),
            )
        return result
