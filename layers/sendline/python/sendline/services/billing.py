"""Money: the account balance (top-ups less spend) and the P&L per campaign, flow, brand or day.

Every figure is a counter kept on the send path (domain.counters): segments, the provider's cost
(its own price where it gave one, else the settings' price per segment), carrier fees and revenue
at the rates in force when the text was sent, and validation lookups as they were paid for.
Spend is provider cost + carrier fees + validation; margin is revenue less spend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.contacts_csv import spreadsheet_line
from sendline.domain.ids import new_id
from sendline.domain.periods import period
from sendline.errors import FieldProblem, ValidationFailed
from sendline.services import catalog
from sendline.services.campaigns import list_campaigns
from sendline.services.flows import list_flows
from sendline.services.reports import by_day, money, rate, totals
from sendline.services.settings import current_settings
from sendline.services.validation import parse

GROUPS = ("campaign", "flow", "brand", "day")
PNL_COLUMNS = ("segments", "provider_cost", "carrier_fees", "validation_cost", "spend", "revenue", "margin",
               "margin_pct", "sent", "delivered")


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    amount: float = Field(gt=0, le=1_000_000, description="dollars added to the account")
    note: StrictStr | None = Field(default=None, max_length=200)


def add_top_up(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(TopUp, body)
    top_up_id = new_id("tu")
    micros = int(round(draft.amount * 1_000_000))
    top_up = {"top_up_id": top_up_id, "amount": round(draft.amount, 6), "note": draft.note, "added_at": iso(now)}
    records.create_entity("TOPUP", top_up_id, top_up, listing=("TOPUPS", f"{iso(now)}#{top_up_id}"))
    records.count(("ALL",), now, {"topup_micros": micros})
    return {**top_up, "balance": balance(records)["balance"]}


def list_top_ups(records: Records) -> list[dict[str, Any]]:
    return records.list_entities("TOPUPS", limit=500)


def spend_micros(c: Mapping[str, int]) -> int:
    return c.get("cost_micros", 0) + c.get("fee_micros", 0) + c.get("lookup_cost_micros", 0)


def balance(records: Records) -> dict[str, Any]:
    """Top-ups less spend, all time, and whether it is under the low-balance alert threshold."""
    total = records.counters([("ALL", "TOTAL")])[("ALL", "TOTAL")]
    threshold = current_settings(records).billing.low_balance_alert
    left = money(total.get("topup_micros", 0) - spend_micros(total))
    return {"top_ups": money(total.get("topup_micros", 0)), "spend": money(spend_micros(total)), "balance": left,
            "low_balance_alert": threshold, "low": left < threshold}


def pnl_figures(c: Mapping[str, int]) -> dict[str, Any]:
    spend = spend_micros(c)
    revenue = c.get("revenue_micros", 0)
    return {"segments": c.get("segments", 0), "provider_cost": money(c.get("cost_micros", 0)),
            "carrier_fees": money(c.get("fee_micros", 0)), "validation_cost": money(c.get("lookup_cost_micros", 0)),
            "spend": money(spend), "revenue": money(revenue), "margin": money(revenue - spend),
            "margin_pct": rate(revenue - spend, revenue), "sent": c.get("sent", 0), "delivered": c.get("delivered", 0)}


def profit_and_loss(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """P&L rows for the period, one per campaign, flow, brand or day (`group`), and the total."""
    group = query.get("group") or "campaign"
    if group not in GROUPS:
        raise ValidationFailed(FieldProblem("group", f"must be one of {', '.join(GROUPS)}"))
    when = period(query.get("from"), query.get("to"), now, records.timezone, default_days=30 if group == "day" else None)
    rows: list[dict[str, Any]] = []
    if group == "day":
        if when.all_time:
            raise ValidationFailed(FieldProblem("from", "a P&L by day needs a period"))
        rows = [{"day": day, **pnl_figures(values)} for day, values in by_day(records, "ALL", when)]
    else:
        named = _groups(records, group)
        read = totals(records, [scope for scope, _ in named], when)
        rows = [{**label, **pnl_figures(read[scope])} for scope, label in named]
    total = totals(records, ["ALL"], when)["ALL"]
    return {"period": when.describe(), "group": group, "rows": rows, "total": pnl_figures(total)}


def _groups(records: Records, group: str) -> list[tuple[str, dict[str, Any]]]:
    if group == "campaign":
        return [(f"CAMP#{c['campaign_id']}", {"campaign_id": c["campaign_id"], "name": c.get("name"),
                                               "brand_id": c.get("brand_id"), "status": c.get("status")})
                for c in list_campaigns(records)]
    if group == "flow":
        return [(f"FLOW#{f['flow_id']}", {"flow_id": f["flow_id"], "name": f.get("name")}) for f in list_flows(records)]
    return [(f"BRAND#{b['brand_id']}", {"brand_id": b["brand_id"], "name": b.get("name")})
            for b in catalog.list_brands(records)]


def pnl_csv(report: Mapping[str, Any]) -> Iterator[str]:
    """The P&L as CSV lines, each cell safe to open in a spreadsheet."""
    label = {"campaign": ("campaign_id", "name", "brand_id", "status"), "flow": ("flow_id", "name"),
             "brand": ("brand_id", "name"), "day": ("day",)}[report["group"]]
    yield spreadsheet_line((*label, *PNL_COLUMNS))
    for row in report["rows"]:
        yield spreadsheet_line(row.get(k) for k in (*label, *PNL_COLUMNS))
