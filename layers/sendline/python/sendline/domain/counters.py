"""What each status change adds to the counters. Counted in the same write as the change,
so a transition that happens once is counted once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sendline.domain.status import MessageStatus as S


# Counters that measure a level (how many are waiting now) rather than a flow of events: they
# are kept only in the TOTAL bucket, since "pending in the 14:00 hour" means nothing.
LEVEL_COUNTERS = frozenset({"pending_dlr", "pending_drips", "waiting"})


# What a text costs and earns, counted when the carrier takes it (micro-dollars).
MONEY_COUNTERS = ("cost_micros", "revenue_micros", "fee_micros")
# Counters of what happened to texts once the carrier was asked: they are also counted in the
# text's brand, sending number, carrier and creative, and in the hour the text was attempted,
# however late its receipt or its reply comes, so each hour's rates are the rates of the texts
# sent in it. Everything else (skips, cancellations, levels) is counted when it happens.
DELIVERY_COUNTERS = frozenset({"attempted", "sent", "delivered", "undelivered", "failed", "unknown", "segments",
                               *MONEY_COUNTERS, "replies", "opt_outs"})
# Per-carrier splits kept in every scope but the carrier's own: "c|{carrier}|{counter}".
BY_CARRIER = ("sent", "delivered", "undelivered", "failed")
UNKNOWN_CARRIER = "unknown"


def error_counter(code: str) -> str:
    """Failures by carrier error code: "e|30007"."""
    return f"e|{code}"


def carrier_counter(carrier: str, counter: str) -> str:
    return f"c|{carrier}|{counter}"


def is_delivery_counter(name: str) -> bool:
    return name in DELIVERY_COUNTERS or name.startswith(("e|", "c|"))


def transition_deltas(old: S, new: S, *, step: int, segments: int = 0, cost_micros: int = 0,
                      revenue_micros: int = 0, fee_micros: int = 0, error_code: str | None = None) -> dict[str, int]:
    deltas: dict[str, int] = {}
    is_drip = step > 0
    if old == S.SENDING and new in (S.SENT, S.FAILED, S.UNKNOWN):
        deltas["attempted"] = 1  # the carrier was asked: what auto-pause divides by
    if new == S.SENT:
        deltas.update(sent=1, pending_dlr=1, segments=segments, cost_micros=cost_micros,
                      revenue_micros=revenue_micros, fee_micros=fee_micros)
        if is_drip:
            deltas["drips_sent"] = 1
    elif new in (S.DELIVERED, S.UNDELIVERED, S.FAILED) and old == S.SENT:
        deltas[new.value] = 1
        deltas["pending_dlr"] = -1
    elif new in (S.FAILED, S.UNKNOWN):
        deltas[new.value] = 1
    elif new in (S.SKIPPED, S.CANCELLED):
        deltas[new.value] = 1
    if new in (S.FAILED, S.UNDELIVERED) and error_code and deltas.get(new.value):
        deltas[error_counter(error_code)] = 1
    if is_drip and old == S.SCHEDULED and new != S.SCHEDULED:
        deltas["pending_drips"] = -1
    return {k: v for k, v in deltas.items() if v}


def reply_deltas(intent: str, action: str) -> dict[str, int]:
    """What an inbound text adds to the text it answers: an opt-out when it took the number
    off our list just now, a reply when it asked for anything but to stop."""
    if action == "opted_out":
        return {"opt_outs": 1}
    if intent == "opt_out":
        return {}  # the number had already opted out: nothing new about this text
    return {"replies": 1}


def inbound_deltas(intent: str) -> dict[str, int]:
    """Counted for the number texted, when the text comes: every inbound text and its intent."""
    return {"inbound": 1, f"inbound_{intent or 'none'}": 1}


def inbound_scopes(record: Mapping[str, Any]) -> list[str]:
    """Where an inbound text counts: the account, the number texted and its brand."""
    scopes = ["ALL"]
    if record.get("to"):
        scopes.append(f"NUM#{record['to']}")
    if record.get("brand_id"):
        scopes.append(f"BRAND#{record['brand_id']}")
    return scopes


def with_carrier_split(deltas: dict[str, int], carrier: str) -> dict[str, int]:
    """The deltas plus their per-carrier split (for the scopes that are not the carrier's)."""
    split = {carrier_counter(carrier, name): deltas[name] for name in BY_CARRIER if deltas.get(name)}
    return {**deltas, **split}


def carrier_name(value: object) -> str:
    """A carrier as a counter scope names it: the provider's name, trimmed, at most 60
    characters, or `unknown`."""
    text = " ".join(str(value or "").split())[:60]
    return text.replace("|", "/").replace("#", " ") or UNKNOWN_CARRIER


def source_scopes(message: Mapping[str, Any]) -> tuple[str, ...]:
    """The account and where the text comes from (its campaign or flow)."""
    if message.get("campaign_id"):
        return ("ALL", f"CAMP#{message['campaign_id']}")
    return scopes_for(message.get("flow_id"))


def dimension_scopes(message: Mapping[str, Any]) -> tuple[str, ...]:
    """Where a text was attempted from and to: its brand, sending number, the recipient's
    carrier, and its campaign creative. Fixed once the carrier is asked."""
    scopes = []
    if message.get("brand_id"):
        scopes.append(f"BRAND#{message['brand_id']}")
    if message.get("from_number"):
        scopes.append(f"NUM#{message['from_number']}")
    scopes.append(f"CARRIER#{carrier_name(message.get('carrier'))}")
    if message.get("campaign_id") and message.get("creative_id"):
        scopes.append(f"CREATIVE#{message['campaign_id']}#{message['creative_id']}")
    return tuple(scopes)


def time_buckets(moment: datetime, timezone: str = "UTC") -> tuple[str, ...]:
    """TOTAL, the day and the hour the moment falls in, in the reporting time zone."""
    local = moment.astimezone(ZoneInfo(timezone))
    return ("TOTAL", f"D#{local:%Y-%m-%d}", f"H#{local:%Y-%m-%dT%H}")


def scopes_for(flow_id: str | None) -> tuple[str, ...]:
    return ("ALL", f"FLOW#{flow_id}") if flow_id else ("ALL",)


def delivery_rate(counters: dict[str, int]) -> float:
    """Delivered as a percentage of what the carrier accepted, two decimals."""
    sent = counters.get("sent", 0)
    return round(100.0 * counters.get("delivered", 0) / sent, 2) if sent else 0.0
