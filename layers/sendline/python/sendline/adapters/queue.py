"""The sends queue: what a worker needs to find a message, nothing more (no PII in SQS)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SendRequest:
    lead_id: str
    step: int

    def to_body(self) -> str:
        return json.dumps({"lead_id": self.lead_id, "step": self.step}, separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> SendRequest:
        data = json.loads(body)
        return cls(lead_id=str(data["lead_id"]), step=int(data["step"]))


class SendQueue:
    def __init__(self, client: Any, queue_url: str):
        self._sqs = client
        self.url = queue_url

    def send(self, requests: Sequence[SendRequest], delay_s: int = 0) -> list[SendRequest]:
        """Queue requests ten at a time; returns those SQS did not take (to be retried later)."""
        failed: list[SendRequest] = []
        for start in range(0, len(requests), 10):
            chunk = requests[start:start + 10]
            entries = [{"Id": str(i), "MessageBody": r.to_body(), "DelaySeconds": delay_s} for i, r in enumerate(chunk)]
            response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            failed += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
        return failed

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        """Make a received message visible again after `delay_s` (backoff without a sleep)."""
        self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=max(0, min(delay_s, 43200)))
