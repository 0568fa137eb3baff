"""The scheduler's tick: queue every message whose time has come (drips, and first texts the
queue did not take). Runs every minute; safe to run twice, since workers claim each message.

A message due while its recipient's send window is closed (a drip due at 2am local) is not
queued: it moves to the window's next opening and waits there. A lead's texts that come due
together (a first text and its drips held for the same opening) go one per tick, lowest step
first, so a follow-up never reaches the lead before the text it follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.status import MessageStatus
from sendline.errors import ConditionFailed
from sendline.services.flows import ACTIVE
from sendline.services.send_windows import Windows, defer


@dataclass
class TickReport:
    due: int = 0
    queued: int = 0
    cancelled: int = 0
    parked: int = 0
    deferred: int = 0
    behind_earlier_step: int = 0  # due, left for the next tick behind the same lead's earlier text
    queue_refused: int = 0
    by_flow: dict[str, int] = field(default_factory=dict)


def run_due_messages(records: Records, queue: SendQueue, now: datetime) -> TickReport:
    due = records.due_messages(now)
    report = TickReport(due=len(due))
    if not due:
        return report
    flows: dict[str, dict[str, Any] | None] = {}
    for flow_id in {m["flow_id"] for m in due if m.get("flow_id")}:
        flows[flow_id] = records.get_flow(flow_id)
    on_dnc = records.dnc_among({m["to"] for m in due})
    windows = Windows(records)

    ready = []
    for message in due:
        flow = flows.get(message["flow_id"]) if message.get("flow_id") else None
        if message["to"] in on_dnc:
            status = MessageStatus.SKIPPED if int(message["step"]) == 0 else MessageStatus.CANCELLED
            try:
                records.transition(message, status, now, fields={"skip_reason": "dnc"})
                report.cancelled += 1
            except ConditionFailed:
                pass
        elif message.get("flow_id") and (flow is None or flow.get("status") != ACTIVE):
            records.park_for_paused_flow(message)
            report.parked += 1
        elif (opens := windows.next_opening(message["to"], now, flow)) is not None:
            try:
                defer(records, message, now, opens)
                report.deferred += 1
            except ConditionFailed:
                pass
        else:
            ready.append(message)
    ready, report.behind_earlier_step = _one_per_lead(ready)

    refused = set(queue.send([SendRequest(m["message_id"]) for m in ready]))
    report.queue_refused = len(refused)
    for message in ready:
        if SendRequest(message["message_id"]) in refused:
            continue  # still due: the next tick tries again
        try:
            records.transition(message, MessageStatus.QUEUED, now, fields={"queued_at": iso(now)})
        except ConditionFailed:
            pass  # a worker already claimed it from the queue
        report.queued += 1
        owner = message.get("flow_id") or "quick_sends"
        report.by_flow[owner] = report.by_flow.get(owner, 0) + 1
    return report


def _one_per_lead(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Each lead's lowest-step message (a quick send is its own), and how many were left."""
    first: dict[str, dict[str, Any]] = {}
    for message in sorted(messages, key=lambda m: int(m["step"])):
        first.setdefault(message.get("lead_id") or message["message_id"], message)
    return list(first.values()), len(messages) - len(first)
