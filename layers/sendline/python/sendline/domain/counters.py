"""What each status change adds to the counters. Counted in the same write as the change,
so a transition that happens once is counted once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sendline.domain.status import MessageStatus as S


# Counters that measure a level (how many are waiting now) rather than a flow of events: they
# are kept only in the TOTAL bucket, since "pending in the 14:00 hour" means nothing.
LEVEL_COUNTERS = frozenset({"pending_dlr", "pending_drips", "waiting"})


def transition_deltas(old: S, new: S, *, step: int, segments: int = 0, cost_micros: int = 0) -> dict[str, int]:
    deltas: dict[str, int] = {}
    is_drip = step > 0
    if old == S.SENDING and new in (S.SENT, S.FAILED, S.UNKNOWN):
        deltas["attempted"] = 1  # the carrier was asked: what auto-pause divides by
    if new == S.SENT:
        deltas.update(sent=1, pending_dlr=1, segments=segments, cost_micros=cost_micros)
        if is_drip:
            deltas["drips_sent"] = 1
    elif new in (S.DELIVERED, S.UNDELIVERED, S.FAILED) and old == S.SENT:
        deltas[new.value] = 1
        deltas["pending_dlr"] = -1
    elif new in (S.FAILED, S.UNKNOWN):
        deltas[new.value] = 1
    elif new in (S.SKIPPED, S.CANCELLED):
        deltas[new.value] = 1
    if is_drip and old == S.SCHEDULED and new != S.SCHEDULED:
        deltas["pending_drips"] = -1
    return {k: v for k, v in deltas.items() if v}


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
