"""Alerts for operators: things the platform did on its own (auto-pause) or needs a person for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.ids import new_id
from sendline.errors import FieldProblem, NotFound


def raise_alert(records: Records, kind: str, now: datetime, *, message: str, campaign_id: str | None = None,
                figures: dict[str, Any] | None = None) -> dict[str, Any]:
    alert_id = new_id("al")
    alert = {"alert_id": alert_id, "kind": kind, "message": message, "campaign_id": campaign_id,
             "figures": figures, "raised_at": iso(now), "acknowledged": False}
    records.create_entity("ALERT", alert_id, alert, listing=("ALERTS", f"{iso(now)}#{alert_id}"))
    return alert


def list_alerts(records: Records, limit: int = 100) -> list[dict[str, Any]]:
    return records.list_entities("ALERTS", limit=limit)


def acknowledge(records: Records, alert_id: str, now: datetime) -> dict[str, Any]:
    try:
        return records.update_entity("ALERT", alert_id, set_fields={"acknowledged": True, "acknowledged_at": iso(now)})
    except KeyError:
        raise NotFound(FieldProblem("alert_id", "no alert with this id")) from None
