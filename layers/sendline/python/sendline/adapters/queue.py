"""The sends queue: what a worker needs to find a message, nothing more (no PII in SQS)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SendRequest:
    message_id: str

    def to_body(self) -> str:
        return json.dumps({"message_id": self.message_id}, separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> SendRequest:
        data = json.loads(body)
        if "message_id" in data:
            return cls(message_id=str(data["message_id"]))
        # The first release's body named the lead and step; such messages may still be queued.
        return cls(message_id=f"{data['lead_id']}-{int(data['step'])}")


class SendQueue:
    def __init__(self, client: Any, queue_url: str):
        self._sqs = client
        self.url = queue_url

    def send(self, requests: Sequence[SendRequest], delay_s: int | Sequence[int] = 0) -> list[SendRequest]:
        """Queue requests ten at a time; returns those SQS did not take (to be retried later).

        `delay_s` is one delay for all, or one per request (a campaign spreads its minute)."""
        delays = [delay_s] * len(requests) if isinstance(delay_s, int) else list(delay_s)
        failed: list[SendRequest] = []
        for start in range(0, len(requests), 10):
            chunk = requests[start:start + 10]
            entries = [{"Id": str(i), "MessageBody": r.to_body(), "DelaySeconds": max(0, min(900, delays[start + i]))}
                       for i, r in enumerate(chunk)]
            response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            failed += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
        return failed

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        """Make a received message visible again after `delay_s` (backoff without a sleep)."""
        self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=max(0, min(delay_s, 43200)))


class DeadLetters:
    """The dead-letter queues, by the name of the queue they catch (`sends`, `imports`)."""

    def __init__(self, client: Any, urls: dict[str, str]):
        self._sqs = client
        self.urls = urls

    def depths(self) -> dict[str, int]:
        """How many messages wait in each (ApproximateNumberOfMessages: visible ones)."""
        found = {}
        for name, url in sorted(self.urls.items()):
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            found[name] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        return found


def queue_name_of(url_or_arn: str) -> str:
    """A queue's own name: the last segment of its URL (`https://sqs.../123456789012/<name>`)
    or of its ARN (`arn:aws:sqs:<region>:<account>:<name>`)."""
    return url_or_arn.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


@dataclass(frozen=True)
class QueueDepth:
    """What SQS says a queue holds now (its Approximate* attributes) and how long a receive
    hides a message."""

    visible: int
    in_flight: int
    delayed: int
    visibility_timeout_s: int

    @property
    def held(self) -> int:
        """Messages received or waiting to be: the ones an age can be told of (not the delayed)."""
        return self.visible + self.in_flight


@dataclass(frozen=True)
class QueuedMessage:
    """A received message: SQS's id and receipt, the body, SQS's system attributes
    (`ApproximateReceiveCount`, `SentTimestamp`, ...) and the sender's message attributes."""

    sqs_message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]]


DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed", "VisibilityTimeout"]
SQS_BATCH = 10  # the most messages one SQS call receives, sends, deletes or releases


class WorkQueues:
    """The queues operators watch, by the name the spec gives them (`sends`, `imports`): each
    queue's URL and its dead-letter queue's. Reads depths, and receives, releases, copies and
    deletes messages; what to move and when is the services' business (services/dead_letters.py)."""

    def __init__(self, client: Any, queue_urls: dict[str, str], dlq_urls: dict[str, str]):
        self._sqs = client
        self.queue_urls = dict(queue_urls)
        self.dlq_urls = dict(dlq_urls)

    @property
    def names(self) -> list[str]:
        return sorted(set(self.queue_urls) | set(self.dlq_urls))

    def depth(self, url: str) -> QueueDepth:
        found = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTH_ATTRIBUTES)["Attributes"]
        return QueueDepth(visible=int(found.get("ApproximateNumberOfMessages", 0)),
                          in_flight=int(found.get("ApproximateNumberOfMessagesNotVisible", 0)),
                          delayed=int(found.get("ApproximateNumberOfMessagesDelayed", 0)),
                          visibility_timeout_s=int(found.get("VisibilityTimeout", 30)))

    def receive(self, url: str, max_messages: int, *, hide_s: int, wait_s: int = 0) -> list[QueuedMessage]:
        """Up to `max_messages` (at most 10) messages, hidden from other consumers for `hide_s`."""
        response = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max(1, min(SQS_BATCH, max_messages)),
                                             VisibilityTimeout=hide_s, WaitTimeSeconds=wait_s,
                                             AttributeNames=["All"], MessageAttributeNames=["All"])
        return [QueuedMessage(sqs_message_id=m["MessageId"], receipt_handle=m["ReceiptHandle"], body=m["Body"],
                              attributes={k: str(v) for k, v in m.get("Attributes", {}).items()},
                              message_attributes=dict(m.get("MessageAttributes", {})))
                for m in response.get("Messages", [])]

    def release(self, url: str, messages: Sequence[QueuedMessage]) -> None:
        """Make received messages visible again at once (a visibility timeout of 0)."""
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start:start + SQS_BATCH]
            self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)])

    def send_copies(self, url: str, messages: Sequence[QueuedMessage]) -> list[QueuedMessage]:
        """Send each message's body and message attributes to `url` as a new message; returns
        the ones SQS took."""
        taken: list[QueuedMessage] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start:start + SQS_BATCH]
            entries = []
            for i, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": message.body}
                attributes = _sendable_attributes(message.message_attributes)
                if attributes:
                    entry["MessageAttributes"] = attributes
                entries.append(entry)
            response = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
            taken += [chunk[int(s["Id"])] for s in response.get("Successful", [])]
        return taken

    def delete(self, url: str, messages: Sequence[QueuedMessage]) -> list[QueuedMessage]:
        """Delete received messages; returns the ones SQS did not delete."""
        kept: list[QueuedMessage] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start:start + SQS_BATCH]
            response = self._sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)])
            kept += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
        return kept


def _sendable_attributes(attributes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Message attributes as ReceiveMessage gives them, in the shape SendMessage takes."""
    sendable = {}
    for name, attribute in attributes.items():
        value = {"DataType": attribute["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if attribute.get(key) is not None:
                value[key] = attribute[key]
        sendable[name] = value
    return sendable
