"""Auto-pause: a running campaign whose error rate climbs past its threshold pauses itself and
tells the operator why, before carriers start filtering the brand's numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from sendline.adapters.records import Records
from sendline.errors import SendlineError
from sendline.services.alerts import raise_alert
from sendline.services.campaigns import CampaignStatus, pause_campaign

logger = Logger(child=True)


def trips(sends: int, errors: int, min_sends: int, threshold_pct: float) -> bool:
    """True once there are at least `min_sends` sends and errors exceed `threshold_pct` percent
    of them. A threshold of 0 means auto-pause is off."""
    if threshold_pct <= 0 or sends < min_sends or sends == 0:
        return False
    return errors * 100 > threshold_pct * sends


def check_auto_pause(records: Records, now: datetime) -> list[dict[str, Any]]:
    """Pause every running campaign that trips its rule; returns the alerts raised."""
    alerts = []
    running = [c for c in records.live_campaigns() if c["status"] == CampaignStatus.RUNNING]
    if not running:
        return alerts
    scopes = [(f"CAMP#{c['campaign_id']}", "TOTAL") for c in running]
    counters = records.counters(scopes)
    for campaign, scope in zip(running, scopes, strict=True):
        rule = campaign.get("auto_pause") or {}
        values = counters[scope]
        sends = values.get("attempted", 0)
        errors = values.get("failed", 0) + values.get("undelivered", 0)
        min_sends, threshold = int(rule.get("min_sends", 500)), float(rule.get("error_rate_threshold_pct", 0))
        if not trips(sends, errors, min_sends, threshold):
            continue
        figures = {"sends": sends, "errors": errors, "failed": values.get("failed", 0),
                   "undelivered": values.get("undelivered", 0),
                   "error_rate_pct": round(100.0 * errors / sends, 2), "threshold_pct": threshold,
                   "min_sends": min_sends}
        try:
            pause_campaign(records, campaign["campaign_id"], now, reason="auto_pause", figures=figures)
        except SendlineError:
            continue  # paused or cancelled by someone else meanwhile
        logger.warning("campaign auto-paused", extra={"campaign_id": campaign["campaign_id"], **figures})
        alerts.append(raise_alert(
            records, "campaign_auto_paused", now, campaign_id=campaign["campaign_id"], figures=figures,
            message=(f"Campaign {campaign['name']!r} paused itself: {figures['error_rate_pct']}% of {sends} sends "
                     f"failed or went undelivered, above the {threshold:g}% threshold.")))
    return alerts
