"""The checks a worker makes just before a text goes to the carrier, beyond the DNC list:
the campaign's state and send window, the recipient's phone validation, the texts a day the
recipient's state allows, and the pace of the campaign and of the sending number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.phones import mask_phone
from sendline.domain.send_window import daily_cap, is_open, next_open
from sendline.domain.status import MessageStatus
from sendline.domain.validation_rules import screen
from sendline.services.campaigns import CampaignStatus, send_window_of

logger = Logger(child=True)

INTEL_TTL = timedelta(days=30)
NUMBER_CACHE_S = 30.0
# How far ahead a worker may take a turn and wait for it: at least one turn of a 1 MPS number,
# and short enough that a batch of ten waiting texts stays well inside the worker's timeout.
PACING_HORIZON = timedelta(seconds=1.5)
# A text reaches the carrier a few milliseconds after its turn, and not always the same few, so
# with exact spacing the carrier would count rate + 1 in some second. Each second's worth of
# sends is therefore spread over a second and 20 ms (2% at one a second or more; 20 ms more
# between sends slower than one a second). Measured in the campaign benchmark
# (docs/performance.md, section 4).
SPACING_MARGIN_US = 20_000
# A worker that reaches its turn later than this (a slow write, a busy machine) takes another
# turn: sent late, its text would go close behind the next turn's, and within the margin above
# only this much lateness leaves room for the carrier's own jitter.
LATE_TOLERANCE = timedelta(milliseconds=10)


class PhoneLookups(Protocol):
    def lookup(self, phone: str) -> Any: ...


class Verdict:
    """What the checks decided when the text must not go now."""

    PARKED = "parked"
    CANCELLED = "cancelled"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


def campaign_verdict(records: Records, message: dict[str, Any], now: datetime) -> tuple[str | None, dict[str, Any] | None]:
    """Park, cancel or defer a campaign text whose campaign is not running or whose recipient
    is outside the send window; (None, campaign) when it may go."""
    campaign = records.get_entity("CAMPAIGN", message["campaign_id"])
    status = CampaignStatus(campaign["status"]) if campaign else CampaignStatus.CANCELLED
    if status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
        records.transition(message, MessageStatus.CANCELLED, now, fields={"skip_reason": "campaign_cancelled"})
        return Verdict.CANCELLED, campaign
    if status != CampaignStatus.RUNNING:
        # Back into the campaign's waiting texts; the dispatcher releases them on resume.
        records.transition(message, MessageStatus.SCHEDULED, now, due_at=iso(now), fields={"parked_at": iso(now)})
        return Verdict.PARKED, campaign
    window = send_window_of(campaign)  # type: ignore[arg-type]
    if not is_open(message["to"], now, window):
        opens = next_open(message["to"], now, window) or now + timedelta(hours=1)
        records.transition(message, MessageStatus.SCHEDULED, now, due_at=iso(opens),
                           fields={"deferred_reason": "outside_send_window"})
        return Verdict.DEFERRED, campaign
    return None, campaign


@dataclass(frozen=True)
class Screening:
    """What phone validation said of a recipient: why not to text it (None: text it) and its
    carrier, when the lookup named one."""

    skip_reason: str | None = None
    carrier: str | None = None


def validation_skip(records: Records, lookups: Callable[[str], PhoneLookups] | None, campaign: dict[str, Any],
                    message: dict[str, Any], now: datetime) -> Screening:
    """The skip reason phone validation gives this recipient (None to send), and its carrier.

    Results are kept for 30 days, so a contact in several campaigns is looked up (and paid
    for) once a month. A lookup that fails says nothing about the number: the text goes."""
    # Only the send worker validates phones; the adapter (and httpx) load when it first does.
    from sendline.adapters.phone_intel import LookupFailed, PhoneIntel

    rules = campaign.get("validation") or {}
    if not rules.get("enabled_for_campaigns") or lookups is None:
        return Screening()
    phone = message["to"]
    provider = rules.get("provider", "activity_score")
    intel = records.get_phone_intel(phone, provider, now)
    if intel is None:
        try:
            result = lookups(provider).lookup(phone)
        except LookupFailed as exc:
            logger.warning("phone lookup failed", extra={"to": mask_phone(phone), "reason": exc.reason})
            return Screening()
        intel = {"valid": result.valid, "activity_score": result.activity_score, "line_type": result.line_type,
                 "carrier": result.carrier, "provider": result.provider}
        records.put_phone_intel(phone, provider, intel, now, INTEL_TTL)
        cost = int(round(float(rules.get("cost_per_lookup") or 0) * 1_000_000))
        # Counted where the P&L reads validation cost: the account, the campaign and its brand.
        records.count(("ALL", f"CAMP#{campaign['campaign_id']}", f"BRAND#{campaign['brand_id']}"), now,
                      {"lookups": 1, "lookup_cost_micros": cost})
    reason = screen(PhoneIntel(phone=phone, valid=bool(intel.get("valid")), activity_score=intel.get("activity_score"),
                               line_type=intel.get("line_type"), carrier=intel.get("carrier"),
                               provider=str(intel.get("provider"))), int(rules.get("min_score", 0)))
    return Screening(reason, intel.get("carrier"))


DAY_S = 86_400


@dataclass(frozen=True)
class DailyRoom:
    """Room for one more text today to a recipient whose state caps them: the sends still
    inside 24 hours and the version of their record, to count this one with."""

    kept: list[int]
    version: int


def daily_room(records: Records, phone: str, now: datetime) -> DailyRoom | datetime | None:
    """None when the recipient's state caps nothing; the room to count this text in when there
    is some; else the moment the oldest of the last texts turns 24 hours old and room opens."""
    cap = daily_cap(phone)
    if cap is None:
        return None
    at = int(now.timestamp())
    sent, version = records.recent_sends(phone)
    kept = [t for t in sent if t > at - DAY_S]
    if len(kept) >= cap:
        return datetime.fromtimestamp(kept[-cap] + DAY_S, UTC)
    return DailyRoom(kept[-(cap - 1):] if cap > 1 else [], version)




def sending_brand(records: Records, number: str) -> str | None:
    """The brand a registered sending number belongs to (None for one not registered)."""
    found = _sending_number(records, number)
    return found.get("brand_id") if found else None


def _sending_number(records: Records, number: str) -> dict[str, Any] | None:
    """Registered sending numbers, cached for half a minute per execution environment."""
    return records.remembered(f"NUMBER#{number}", NUMBER_CACHE_S, lambda: records.get_entity("NUMBER", number))


def pacing_limits(records: Records, message: dict[str, Any], campaign: dict[str, Any] | None) -> list[tuple[str, int]]:
    """The keys this text is paced by (its campaign's rate, its sending number's MPS), each with
    the spacing between sends it asks for, in microseconds."""
    limits = []
    if campaign is not None:
        limits.append((f"CAMP#{campaign['campaign_id']}", float(campaign["rate_per_second"])))
    number = _sending_number(records, message["from_number"])
    if number is not None:
        limits.append((f"NUM#{number['number']}", float(number["mps"])))
    return [(key, max(1, int(round((1_000_000 + SPACING_MARGIN_US * min(1.0, per_second)) / per_second))))
            for key, per_second in limits]


def reserve_send_time(records: Records, limits: list[tuple[str, int]], now: datetime, *,
                      give_way: bool = True) -> datetime | None:
    """The moment this text may go: a turn both its campaign's rate and its sending number's MPS
    allow. None when no such turn is free within the horizon, or when its number is busy while
    the campaign's next turn is free (the text is queued again and tries shortly, and the turn
    goes to a text from another number)."""
    if not limits:
        return now
    now_us = int(now.timestamp() * 1_000_000)
    moment = records.reserve_send_time(limits, now_us, int(PACING_HORIZON.total_seconds() * 1_000_000),
                                       give_way=give_way and len(limits) > 1)
    return None if moment is None else datetime.fromtimestamp(moment / 1_000_000, tz=UTC)
