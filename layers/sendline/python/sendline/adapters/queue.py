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

