"""The life of an outbound message, and the rule that statuses only move forward."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its send time (a drip, or a paused flow)
    QUEUED = "queued"  # handed to the sends queue
    SENDING = "sending"  # claimed by a worker; the carrier call is in flight
    SENT = "sent"  # the carrier accepted it
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"  # never sent on purpose (DNC, opted out); `skip_reason` says why
    CANCELLED = "cancelled"  # a drip that will never fire (lead opted out, replied)
    UNKNOWN = "unknown"  # the carrier call's outcome could not be known; never retried


_RANK = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.SKIPPED: 4,
    MessageStatus.CANCELLED: 4,
    MessageStatus.UNKNOWN: 4,
}

FINAL = frozenset(s for s, rank in _RANK.items() if rank == 4)

# Twilio's vocabulary -> ours. Twilio's queued/accepted/sending all mean "the carrier has it",
# which for us is `sent`; statuses we do not track (read, receiving) map to None.
_TWILIO = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}


def rank(status: MessageStatus | str) -> int:
    return _RANK[MessageStatus(status)]


def can_move(current: MessageStatus | str, new: MessageStatus | str) -> bool:
    """A status may only move to a strictly later stage; final statuses never move."""
    return rank(new) > rank(current)


def from_twilio(status: str) -> MessageStatus | None:
    return _TWILIO.get(status.strip().lower())

