"""The campaign dispatcher's tick (every minute): start campaigns whose time has come, release
the next minute's contacts to the sends queue at the campaign's pace, finish what is done and
drain what was cancelled. Safe to run twice at once: the cursor moves by conditional writes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.records import Records, message_id
from sendline.domain.clock import iso, parse_iso
from sendline.domain.pacing import MinutePlan, choose_creative, contact_key, sticky_sender
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.send_window import is_open, next_open
from sendline.domain.status import MessageStatus
from sendline.errors import ConditionFailed, SendlineError
from sendline.services import catalog
from sendline.services.alerts import raise_alert
from sendline.services.campaigns import (
    REQUEUE_AFTER,
    CampaignStatus,
    change_status,
    is_due,
    message_body,
    send_window_of,
)

logger = Logger(child=True)

MINUTE = 60
CHUNK = 90  # contacts per transaction: with the cursor and counters, under DynamoDB's 100 items


@dataclass
class DispatchReport:
    campaigns: int = 0
    started: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    deferred: int = 0
    requeued: int = 0
    drained: int = 0


def dispatch_tick(records: Records, queue: SendQueue, now: datetime) -> DispatchReport:
    report = DispatchReport()
    for campaign in records.live_campaigns():
        report.campaigns += 1
        try:
            _tick_one(records, queue, campaign, now, report)
        except (ConditionFailed, SendlineError) as exc:
            # Another tick or an operator changed the campaign meanwhile: next minute decides.
            logger.info("campaign changed during dispatch", extra={"campaign_id": campaign["campaign_id"],
                                                                   "reason": str(exc)})
    return report


def _tick_one(records: Records, queue: SendQueue, campaign: dict[str, Any], now: datetime,
              report: DispatchReport) -> None:
    status = CampaignStatus(campaign["status"])
    campaign_id = campaign["campaign_id"]
    if status == CampaignStatus.SCHEDULED and is_due(campaign, now):
        campaign = {**campaign, **change_status(records, campaign_id, CampaignStatus.RUNNING, now,
                                                expected=CampaignStatus.SCHEDULED.value)}
        report.started.append(campaign_id)
        status = CampaignStatus.RUNNING
    if status == CampaignStatus.RUNNING:
        _release(records, queue, campaign, now, report)
        if _finished(records, campaign_id):
            stamp = iso(now)
            records.retire_campaign(campaign_id, {"status": CampaignStatus.COMPLETED.value, "completed_at": stamp,
                                                  "updated_at": stamp}, CampaignStatus.RUNNING.value)
            report.completed.append(campaign_id)
    elif status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
        report.drained += _drain(records, campaign, now)


def _finished(records: Records, campaign_id: str) -> bool:
    """Every contact released, nothing waiting, and no text between a worker's claim and the
    carrier's answer."""
    campaign = records.get_entity("CAMPAIGN", campaign_id, consistent=True) or {}
    return (bool(campaign.get("contacts_exhausted")) and not records.campaign_has_waiting(campaign_id)
            and _backlog(records, campaign_id) == 0)


def _drain(records: Records, campaign: dict[str, Any], now: datetime, limit: int = 2000) -> int:
    """Cancel what a cancelled campaign still has waiting, then take it out of the live index."""
    campaign_id = campaign["campaign_id"]
    far = now + timedelta(days=3650)
    drained = 0
    for message in records.campaign_waiting(campaign_id, far, limit):
        try:
            records.transition(message, MessageStatus.CANCELLED, now, fields={"skip_reason": "campaign_cancelled"})
            drained += 1
        except ConditionFailed:
            continue  # a worker has it; it sees the cancellation itself
    if not records.campaign_has_waiting(campaign_id):
        records.retire_campaign(campaign_id, {"updated_at": iso(now)}, campaign["status"])
    return drained


def _backlog(records: Records, campaign_id: str) -> int:
    """Released texts the workers have not reached yet (queued in SQS, delayed or not)."""
    scope = f"CAMP#{campaign_id}"
    c = records.counters([(scope, "TOTAL")])[(scope, "TOTAL")]
    return max(0, c.get("messages", 0) - c.get("attempted", 0) - c.get("skipped", 0) - c.get("cancelled", 0)
               - c.get("waiting", 0))


def _release(records: Records, queue: SendQueue, campaign: dict[str, Any], now: datetime,
             report: DispatchReport) -> None:
    campaign_id = campaign["campaign_id"]
    numbers = catalog.pool_numbers(records, campaign["brand_id"], campaign["pool"])
    if not numbers:
        paused = change_status(records, campaign_id, CampaignStatus.PAUSED, now, expected=CampaignStatus.RUNNING.value,
                               fields={"pause_reason": "no_active_numbers"})
        raise_alert(records, "campaign_paused", now, campaign_id=campaign_id,
                    message=f"Campaign {paused['name']!r} paused: pool {campaign['pool']!r} has no active numbers.")
        return
    rate = float(campaign["rate_per_second"])
    # Seconds an earlier tick already filled (ticks need not be a minute apart) are not
    # planned twice: this release starts where the last one ended.
    planned_until = parse_iso(campaign["planned_until"]) if campaign.get("planned_until") else now
    start = max(0, math.ceil((planned_until - now).total_seconds()))
    if start >= MINUTE:
        return
    plan = MinutePlan(rate, {n["number"]: float(n["mps"]) for n in numbers}, start=start)
    room = math.floor(rate * MINUTE) - _backlog(records, campaign_id)
    if room <= 0:
        return
    senders = [n["number"] for n in numbers]
    released = _release_waiting(records, queue, campaign, senders, plan, now, room, report)
    if not campaign.get("contacts_exhausted"):
        released += _release_new(records, queue, campaign, senders, plan, now, room - released, report)
    if released:
        report.released[campaign_id] = released
    if plan.last_second is not None:
        records.update_entity("CAMPAIGN", campaign_id,
                              set_fields={"planned_until": iso(now + timedelta(seconds=plan.last_second + 1))})


def _queue_at(queue: SendQueue, planned: list[tuple[dict[str, Any], int]]) -> set[str]:
    """Send to SQS with each text's delay; returns the ids SQS refused."""
    if not planned:
        return set()
    refused = queue.send([SendRequest(m["message_id"]) for m, _ in planned], [s for _, s in planned])
    return {r.message_id for r in refused}


def _release_waiting(records: Records, queue: SendQueue, campaign: dict[str, Any], senders: list[str],
                     plan: MinutePlan, now: datetime, room: int, report: DispatchReport) -> int:
    """Texts parked by a pause, deferred to the send window, or lost on the way to SQS."""
    planned: list[tuple[dict[str, Any], int]] = []
    window = send_window_of(campaign)
    for message in records.campaign_waiting(campaign["campaign_id"], now, limit=room):
        if not is_open(message["to"], now, window):
            _defer(records, message, now, window)
            report.deferred += 1
            continue
        sender = message["from_number"] if message["from_number"] in senders else sticky_sender(message["to"], senders)
        second = plan.place(sender)
        if second is None:
            break
        planned.append(({**message, "from_number": sender}, second))
    refused = _queue_at(queue, planned)
    for message, second in planned:
        if message["message_id"] in refused:
            continue
        try:
            records.transition(message, MessageStatus.QUEUED, now, due_at=iso(now + timedelta(seconds=second) + REQUEUE_AFTER),
                               fields={"from_number": message["from_number"], "queued_at": iso(now)})
        except ConditionFailed:
            continue
        if message["status"] == MessageStatus.QUEUED:
            report.requeued += 1
    return len(planned) - len(refused)


def _defer(records: Records, message: dict[str, Any], now: datetime, window: Any) -> None:
    opens = next_open(message["to"], now, window) or now + timedelta(hours=1)
    try:
        records.transition(message, MessageStatus.SCHEDULED, now, due_at=iso(opens),
                           fields={"deferred_reason": "outside_send_window"})
    except ConditionFailed:
        pass


def _release_new(records: Records, queue: SendQueue, campaign: dict[str, Any], senders: list[str],
                 plan: MinutePlan, now: datetime, room: int, report: DispatchReport) -> int:
    campaign_id = campaign["campaign_id"]
    brand = catalog.get_brand(records, campaign["brand_id"])
    creatives = {c["creative_id"]: c for c in campaign["creatives"]}
    weights = [(c["creative_id"], int(c["weight"])) for c in campaign["creatives"]]
    window = send_window_of(campaign)
    cursor = campaign.get("cursor")
    released = 0
    while released < room and not plan.full():
        contacts = records.contacts_after(campaign["list_id"], cursor, min(CHUNK, room - released))
        exhausted = len(contacts) < min(CHUNK, room - released)
        on_dnc = records.dnc_among(c["phone"] for c in contacts)
        messages, planned, last = [], [], cursor
        for contact in contacts:
            if (contact.get("added_at") or "") > campaign.get("scheduled_at", "~"):
                last = contact["sk"]  # joined the list after launch: not this campaign's contact
                continue
            message = _new_message(campaign, brand, creatives, weights, senders, contact, now)
            reason = _skip_reason(contact, on_dnc)
            if reason:
                message.update(status=MessageStatus.SKIPPED.value, skip_reason=reason)
                report.skipped += 1
            elif not is_open(contact["phone"], now, window):
                opens = next_open(contact["phone"], now, window) or now + timedelta(hours=1)
                message.update(status=MessageStatus.SCHEDULED.value, due_at=iso(opens),
                               deferred_reason="outside_send_window")
                report.deferred += 1
            else:
                second = plan.place(message["from_number"])
                if second is None:
                    exhausted = False
                    break
                message.update(status=MessageStatus.QUEUED.value, queued_at=iso(now),
                               due_at=iso(now + timedelta(seconds=second) + REQUEUE_AFTER))
                planned.append((message, second))
            messages.append(message)
            last = contact["sk"]
        if last == cursor and not exhausted:
            break
        records.release_contacts(campaign_id, messages, now, cursor=cursor, new_cursor=last or "C#",
                                 exhausted=exhausted, extra=_creation_counts(messages))
        cursor = last
        _queue_at(queue, planned)  # refused ones are queued again once their due time passes
        released += len(messages)
        if exhausted:
            campaign["contacts_exhausted"] = True
            break
    return released


def _skip_reason(contact: dict[str, Any], on_dnc: set[str]) -> str | None:
    if contact["phone"] in on_dnc:
        return "dnc"
    try:
        normalise_phone(contact["phone"])
    except PhoneRejected:
        return "invalid_number"
    return None


def _creation_counts(messages: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        if message["status"] == MessageStatus.SKIPPED:
            counts["skipped"] = counts.get("skipped", 0) + 1
            key = f"skipped_{message['skip_reason']}"
            counts[key] = counts.get(key, 0) + 1
        elif message["status"] == MessageStatus.SCHEDULED:
            counts["deferred"] = counts.get("deferred", 0) + 1
    return counts


def _new_message(campaign: dict[str, Any], brand: dict[str, Any], creatives: dict[str, dict[str, Any]],
                 weights: list[tuple[str, int]], senders: list[str], contact: dict[str, Any],
                 now: datetime) -> dict[str, Any]:
    phone = contact["phone"]
    creative_id = choose_creative(campaign["campaign_id"], phone, weights)
    return {
        "message_id": message_id(campaign["campaign_id"], contact_key(phone)),
        "campaign_id": campaign["campaign_id"],
        "brand_id": campaign["brand_id"],
        "creative_id": creative_id,
        "step": 0,
        "to": phone,
        "to_masked": mask_phone(phone),
        "from_number": sticky_sender(phone, senders),
        "price_per_segment": campaign.get("price_per_segment"),
        "body": message_body(campaign, creatives[creative_id], brand, contact),
        "created_at": iso(now),
        "attempts": 0,
    }
