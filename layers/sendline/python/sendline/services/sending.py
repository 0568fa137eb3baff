"""Send one queued message through the carrier, at most once.

The worker claims the message with a conditional write before calling the carrier, so SQS
redelivery, a retried batch or two racing workers cannot send it twice. When the carrier's
answer is lost (a read timeout), the message is recorded as `unknown` and never retried:
at-most-once is chosen over a possible duplicate text.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from aws_lambda_powertools import Logger

from sendline.adapters.queue import SendRequest
from sendline.adapters.records import Records
from sendline.adapters.twilio import Accepted, OutcomeUnknown, Rejected, SendOutcome, TryLater, price_to_micros
from sendline.domain.clock import iso, parse_iso
from sendline.domain.phones import mask_phone
from sendline.domain.status import FINAL, MessageStatus
from sendline.errors import ConditionFailed
from sendline.services.delivery import apply_parked_receipts
from sendline.services.dnc import record_failure
from sendline.services.campaigns import REQUEUE_AFTER
from sendline.services.flows import PAUSED
from sendline.services.settings import recent_settings
from sendline.services.send_windows import DAILY_CAP, Hold, hold_outside_window, hold_until
from sendline.services.send_checks import (
    LATE_TOLERANCE,
    PACING_HORIZON,
    DailyRoom,
    PhoneLookups,
    Verdict,
    campaign_verdict,
    daily_room,
    pacing_limits,
    sending_brand,
    reserve_send_time,
    validation_skip,
)

logger = Logger(child=True)

MAX_SEND_ATTEMPTS = 5
# A claim older than this belongs to an invocation that no longer runs (the worker's timeout
# plus a margin): its outcome is unknown.
CLAIM_LIFETIME = timedelta(seconds=45)


class Carrier(Protocol):
    def send(self, *, to: str, from_: str, body: str) -> SendOutcome: ...


class SendResult(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"
    ALREADY_DONE = "already_done"
    PARKED = "parked"
    DEFERRED = "deferred"
    MISSING = "missing"
    NOT_DUE = "not_due"


_VERDICT_RESULTS = {Verdict.PARKED: SendResult.PARKED, Verdict.CANCELLED: SendResult.SKIPPED,
                    Verdict.DEFERRED: SendResult.DEFERRED}


@dataclass
class RetryLater(Exception):
    """Nothing was sent; try this message again after `delay_s` seconds.

    `pacing` marks a wait that is the plan working (the second's sends are spent), not a
    failure: the worker queues the text again rather than letting SQS count a failed receive,
    so pacing never pushes a healthy text towards the dead-letter queue."""

    delay_s: int
    reason: str
    pacing: bool = False

    def __str__(self) -> str:
        return f"retry in {self.delay_s}s: {self.reason}"


def backoff_s(attempt: int, hint: int | None = None) -> int:
    if hint:
        return min(hint, 900)
    return min(300, 5 * 2 ** max(0, attempt - 1)) + random.randint(0, 3)


def send_message(records: Records, carrier: Carrier, request: SendRequest, now: datetime,
                 lookups: Callable[[str], PhoneLookups] | None = None,
                 wait: Callable[[float], None] | None = None,
                 monotonic: Callable[[], float] | None = None) -> SendResult:
    """`now` is when the worker took the request; `wait` sleeps until a paced text's turn and
    `monotonic` tells how long the worker has been at it since (time.sleep and time.monotonic
    unless given)."""
    wait = wait or time.sleep
    monotonic = monotonic or time.monotonic
    started = monotonic()

    def current() -> datetime:
        return now + timedelta(seconds=monotonic() - started)

    def wait_until(moment: datetime) -> None:
        remaining = (moment - current()).total_seconds()
        if remaining > 0:
            wait(remaining)

    # The scheduler (or the lead API) marks a message `queued` after handing it to SQS, so a
    # worker can read `scheduled` and lose its claim to that write: read again and retry.
    for _ in range(3):
        message = records.get_message(request.message_id)
        if message is None:
            logger.warning("send request for an unknown message", extra={"message_id": request.message_id})
            return SendResult.MISSING
        try:
            return _send(records, carrier, message, now, lookups, current, wait_until)
        except ConditionFailed:
            continue
    return SendResult.ALREADY_DONE


# The lead API and the schedulers queue a text once it is due and mark it `queued` just after,
# so a worker may read a due text still `scheduled`; this much clock difference is allowed.
DUE_GRACE = timedelta(seconds=2)


def _not_due_yet(message: dict, now: datetime) -> bool:
    due_at = message.get("due_at")
    return bool(due_at) and parse_iso(due_at) > now + DUE_GRACE


def _send(records: Records, carrier: Carrier, message: dict, now: datetime,
          lookups: Callable[[str], PhoneLookups] | None, current: Callable[[], datetime],
          wait_until: Callable[[datetime], None]) -> SendResult:
    status = MessageStatus(message["status"])
    if status in FINAL or status == MessageStatus.SENT:
        return SendResult.ALREADY_DONE
    if status == MessageStatus.SENDING:
        return _settle_orphaned_claim(records, message, now)
    if status == MessageStatus.SCHEDULED and _not_due_yet(message, now):
        # A request for a drip or a deferred text before its time (a stale or re-driven request,
        # or one nobody should have sent): it goes when due, queued by its scheduler, not now.
        logger.warning("send request before the message is due",
                       extra={"message_id": message["message_id"], "due_at": message.get("due_at")})
        return SendResult.NOT_DUE

    flow = records.get_flow(message["flow_id"]) if message.get("flow_id") else None
    if flow and flow.get("status") == PAUSED:
        _park(records, message, now, flow["flow_id"])
        return SendResult.PARKED
    campaign = None
    if message.get("campaign_id"):
        verdict, campaign = campaign_verdict(records, message, now)
        if verdict:
            return _VERDICT_RESULTS[verdict]
    else:
        # A flow's or quick send's text outside its recipient's send window waits for the opening.
        hold = hold_outside_window(records, message, flow, now)
        if hold == Hold.NOT_MARKED_YET:
            raise RetryLater(2, "outside the send window, not yet marked queued", pacing=True)
        if hold:
            return SendResult.DEFERRED
    # The last-moment check: a STOP processed while this message sat in the queue wins.
    if records.get_dnc(message["to"]):
        records.transition(message, MessageStatus.SKIPPED, now, fields={"skip_reason": "opted_out"})
        return SendResult.SKIPPED
    screening = validation_skip(records, lookups, campaign, message, now) if campaign is not None else None
    if screening and screening.skip_reason:
        records.transition(message, MessageStatus.SKIPPED, now, fields={"skip_reason": screening.skip_reason,
                                                                          "carrier": screening.carrier})
        return SendResult.SKIPPED
    room = daily_room(records, message["to"], now)
    if isinstance(room, datetime):
        if hold_until(records, message, now, room, DAILY_CAP) == Hold.NOT_MARKED_YET:
            raise RetryLater(2, "over the recipient's daily cap, not yet marked queued", pacing=True)
        return SendResult.DEFERRED
    limits = pacing_limits(records, message, campaign)
    # The turn is taken as of this moment, not when the worker took the request: the checks
    # above took time, and a turn already past would send at once, closer to the next one.
    send_at = reserve_send_time(records, limits, current())
    if send_at is None:
        raise RetryLater(1 + random.randint(0, 2), "the campaign's rate or the number's MPS has no turn free yet",
                         pacing=True)
    if isinstance(room, DailyRoom):
        _count_toward_daily_cap(records, message, room, limits, send_at)

    claim_id = uuid.uuid4().hex
    attempts = int(message.get("attempts") or 0) + 1
    try:
        # What the text is counted under once the carrier is asked: its brand (a flow's text
        # takes its sending number's), and its recipient's carrier when a lookup named it.
        claimed = records.transition(message, MessageStatus.SENDING, now, fields={
            "claim_id": claim_id, "claimed_at": iso(now), "attempts": attempts,
            "brand_id": message.get("brand_id") or sending_brand(records, message["from_number"]),
            "carrier": (screening.carrier if screening else None) or message.get("carrier")})
    except ConditionFailed:
        records.release_send_time(limits, int(send_at.timestamp() * 1_000_000))
        raise
    # The turn is waited for after the claim, so the carrier call follows it as closely as it can.
    send_at = _on_time(records, limits, send_at, current, wait_until)
    outcome = carrier.send(to=message["to"], from_=message["from_number"], body=message["body"])
    return _record_outcome(records, claimed, claim_id, attempts, outcome, max(now, send_at))


LATE_RETRIES = 5


def _on_time(records: Records, limits: list[tuple[str, int]], send_at: datetime, current: Callable[[], datetime],
             wait_until: Callable[[datetime], None]) -> datetime:
    """Wait for the text's turn, and go at it: a worker that got there late takes the next free
    turn instead (the one it missed stays used). Returns the turn the text goes at."""
    wait_until(send_at)
    for _ in range(LATE_RETRIES):
        if not limits or current() - send_at <= LATE_TOLERANCE:
            break
        later = reserve_send_time(records, limits, current(), give_way=False)
        if later is None:  # every turn within the horizon is taken: let some pass
            wait_until(current() + PACING_HORIZON / 2)
            continue
        logger.info("turn missed, took a later one", extra={"late_ms": int((current() - send_at).total_seconds() * 1000)})
        send_at = later
        wait_until(send_at)
    return send_at


def _count_toward_daily_cap(records: Records, message: dict, room: DailyRoom, limits: list[tuple[str, int]],
                            send_at: datetime) -> None:
    """Count the text against its recipient's daily cap before it goes (a text that then fails
    still counts: the cap is never passed). Another text to the same person counted meanwhile
    means the room must be looked at again."""
    try:
        records.note_recent_send(message["to"], room.kept, room.version, int(send_at.timestamp()))
    except ConditionFailed:
        records.release_send_time(limits, int(send_at.timestamp() * 1_000_000))
        raise RetryLater(1, "another text to this recipient was counted meanwhile", pacing=True) from None


def _record_outcome(records: Records, message: dict, claim_id: str, attempts: int, outcome: SendOutcome,
                    now: datetime) -> SendResult:
    masked = mask_phone(message["to"])
    if isinstance(outcome, Accepted):
        billing = recent_settings(records).billing
        records.transition(message, MessageStatus.SENT, now, claim_id=claim_id, fields={
            "provider": "twilio",
            "provider_sid": outcome.provider_sid,
            "provider_status": outcome.provider_status,
            "segments": outcome.segments,
            "price": outcome.price,
            "cost_micros": _cost_micros(outcome, message),
            "cost_estimated": not outcome.price,
            "revenue_micros": micros(outcome.segments * billing.rate_for(message.get("brand_id"))),
            "fee_micros": micros(outcome.segments * billing.carrier_fee_for(message.get("carrier"))),
            "sent_at": iso(now),
        }, extra_ops=[records.sid_link_op(outcome.provider_sid, message["message_id"]),
                      records.last_text_op(message, now)])
        logger.info("sent", extra={"to": masked, "provider_sid": outcome.provider_sid})
        apply_parked_receipts(records, outcome.provider_sid, now)
        return SendResult.SENT
    if isinstance(outcome, Rejected):
        failed = records.transition(message, MessageStatus.FAILED, now, claim_id=claim_id, fields={
            "error_code": outcome.error_code, "error_message": outcome.error_message, "failed_at": iso(now)})
        logger.info("carrier rejected", extra={"to": masked, "error_code": outcome.error_code})
        record_failure(records, failed, now)
        return SendResult.FAILED
    if isinstance(outcome, OutcomeUnknown):
        records.transition(message, MessageStatus.UNKNOWN, now, claim_id=claim_id, fields={
            "error_message": f"carrier answer lost: {outcome.reason}", "failed_at": iso(now)})
        logger.warning("carrier outcome unknown", extra={"to": masked, "reason": outcome.reason})
        return SendResult.UNKNOWN
    assert isinstance(outcome, TryLater)
    if attempts >= MAX_SEND_ATTEMPTS:
        records.transition(message, MessageStatus.FAILED, now, claim_id=claim_id, fields={
            "error_code": outcome.error_code or "retries_exhausted",
            "error_message": f"gave up after {attempts} attempts: {outcome.reason}", "failed_at": iso(now)})
        return SendResult.FAILED
    delay = backoff_s(attempts, outcome.retry_after_s)
    # A campaign's text goes back among the campaign's waiting texts (due once the retry is
    # overdue), so the campaign is not finished while it still has a text to send.
    requeue_at = iso(now + timedelta(seconds=delay) + REQUEUE_AFTER) if message.get("campaign_id") else None
    records.transition(message, MessageStatus.QUEUED, now, claim_id=claim_id, due_at=requeue_at,
                       fields={"last_error": outcome.reason, "claim_id": None, "claimed_at": None})
    raise RetryLater(delay, outcome.reason)


def micros(dollars: float) -> int:
    return int(round(dollars * 1_000_000))


def _cost_micros(outcome: Accepted, message: dict) -> int:
    """The carrier's price when it gave one; Twilio gives none when it accepts a message (the
    price comes later), so until then it is the segments at the price per segment the text
    was created with."""
    if outcome.price:
        return price_to_micros(outcome.price)
    return int(round(outcome.segments * float(message.get("price_per_segment") or 0) * 1_000_000))


def _settle_orphaned_claim(records: Records, message: dict, now: datetime) -> SendResult:
    claimed_at = parse_iso(message.get("claimed_at") or message["updated_at"])
    age = now - claimed_at
    if age < CLAIM_LIFETIME:
        # Another invocation is inside the carrier call right now; look again after it ends.
        raise RetryLater(int((CLAIM_LIFETIME - age).total_seconds()) + 1, "claimed by another worker")
    try:
        records.transition(message, MessageStatus.UNKNOWN, now, claim_id=message.get("claim_id"), fields={
            "error_message": "worker stopped during the carrier call", "failed_at": iso(now)})
    except ConditionFailed:
        return SendResult.ALREADY_DONE
    return SendResult.UNKNOWN


def _park(records: Records, message: dict, now: datetime, flow_id: str) -> None:
    if MessageStatus(message["status"]) == MessageStatus.SCHEDULED:
        records.park_for_paused_flow(message)
        return
    records.transition(message, MessageStatus.SCHEDULED, now, due_at=message.get("due_at") or iso(now),
                       park_for_flow=flow_id)
