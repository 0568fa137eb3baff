"""Account totals from the counters: a handful of key reads, never a scan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.counters import delivery_rate, time_buckets


def account_stats(records: Records, now: datetime) -> dict[str, Any]:
    _, day, _ = time_buckets(now, records.timezone)
    counters = records.counters([("ALL", "TOTAL"), ("ALL", day)])
    total, today = counters[("ALL", "TOTAL")], counters[("ALL", day)]
    return {
        "success": True,
        "leads": total.get("leads", 0),
        "total_sent": total.get("sent", 0),
        "delivered": total.get("delivered", 0),
        "undelivered": total.get("undelivered", 0),
        "failed": total.get("failed", 0),
        "skipped": total.get("skipped", 0),
        "unknown": total.get("unknown", 0),
        "pending_dlr": total.get("pending_dlr", 0),
        "pending_drips": total.get("pending_drips", 0),
        "delivery_rate": delivery_rate(total),
        "sent_today": today.get("sent", 0),
        "delivered_today": today.get("delivered", 0),
        "segments": total.get("segments", 0),
        "spend": round(total.get("cost_micros", 0) / 1_000_000, 4),
        "timezone": records.timezone,
    }
