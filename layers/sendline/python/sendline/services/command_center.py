"""The Command Center: the figures an operator opens the dashboard for, in one call.

Reads the account's TOTAL and today's counters, the live campaigns' counters, the sending numbers'
counters for the last 7 days (number health) and the open alerts: a bounded set of keys whatever
the volume sent; and the dead-letter queues' attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.counters import time_buckets
from sendline.services.alerts import list_alerts
from sendline.services.billing import balance, spend_micros
from sendline.services.campaigns import progress
from sendline.services.flows import list_flows
from sendline.services.reports import delivery_figures, money, number_health

PROVIDERS = ("twilio",)  # one provider today: the figures are not split by provider
HEALTH_DAYS = 7


def command_center(records: Records, now: datetime,
                   dead_letter_depths: Callable[[], dict[str, int]] | None = None) -> dict[str, Any]:
    """`dead_letter_depths` tells how many messages wait in each dead-letter queue (a queue's
    attributes; not counters): each one holding any raises an alert."""
    _, day, _ = time_buckets(now, records.timezone)
    read = records.counters([("ALL", "TOTAL"), ("ALL", day)])
    total, today = read[("ALL", "TOTAL")], read[("ALL", day)]
    live = records.live_campaigns()
    running = [c for c in live if c.get("status") == "running"]
    flows = list_flows(records)
    money_left = balance(records)
    since = (now - timedelta(days=HEALTH_DAYS)).strftime("%Y-%m-%dT%H:00:00Z")
    unhealthy = [n for n in number_health(records, {"from": since}, now)["numbers"] if n["flagged"]]

    alerts = [{"kind": a["kind"], "message": a["message"], "raised_at": a["raised_at"], "alert_id": a["alert_id"],
               "campaign_id": a.get("campaign_id"), "figures": a.get("figures")}
              for a in list_alerts(records) if not a.get("acknowledged")]
    alerts += [{"kind": "unhealthy_number", "number": n["number"], "health_score": n["health_score"],
                "message": f"{n['number']} scores {n['health_score']} over the last {HEALTH_DAYS} days "
                           f"(delivery {n['delivery_rate']}%, filtered {n['filtered_rate']}%, "
                           f"opt-outs {n['opt_out_rate']}%)"} for n in unhealthy]
    for queue, waiting in (dead_letter_depths() if dead_letter_depths else {}).items():
        if waiting:
            alerts.append({"kind": "dead_letters", "queue": queue, "messages": waiting,
                           "message": f"{waiting} message(s) in the {queue} dead-letter queue: "
                                      "they failed every retry and wait for a person"})
    if money_left["low"]:
        alerts.append({"kind": "low_balance", "balance": money_left["balance"],
                       "message": f"Balance ${money_left['balance']:.2f} is under ${money_left['low_balance_alert']:.2f}"})

    figures = delivery_figures(total)
    return {
        "providers": list(PROVIDERS),
        **figures,
        "failed_total": total.get("failed", 0) + total.get("undelivered", 0),
        "total_sent": total.get("sent", 0),
        "sent_today": today.get("sent", 0),
        "delivered_today": today.get("delivered", 0),
        "leads": total.get("leads", 0),
        "leads_today": today.get("leads", 0),
        "pending_dlr": total.get("pending_dlr", 0),
        "pending_drips": total.get("pending_drips", 0),
        "active_campaigns": len(running),
        "active_flows": sum(1 for f in flows if f.get("status", "active") == "active"),
        "total_spend": money(spend_micros(total)),
        "revenue": money(total.get("revenue_micros", 0)),
        "balance": money_left,
        "live_campaigns": [{"campaign_id": c["campaign_id"], "name": c.get("name"), "status": c.get("status"),
                            "progress": progress(records, c)} for c in live],
        "alerts": alerts,
        "timezone": records.timezone,
    }
