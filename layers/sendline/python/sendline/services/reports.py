"""The analytics reports: every figure from the pre-aggregated counters, never from the texts.

Each report reads a bounded set of counter keys (scope × bucket × shard, batched 100 to a
request), so its cost depends on the period and the number of brands, numbers or campaigns it
covers, never on how many texts were sent. docs/reports.md lists the keys each report reads.

Filters choose the counter scope: one of `brand_id`, `campaign_id` (with `creative_id`, one of
its creatives), `flow_id`, `number`; `carrier` alone reads the carrier's own scope, and with
another filter reads that scope's per-carrier split (sent, delivered, undelivered, failed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.counters import BY_CARRIER, carrier_counter, carrier_name
from sendline.domain.error_codes import describe
from sendline.domain.periods import MAX_HOURLY_DAYS, Period, period
from sendline.errors import FieldProblem, ValidationFailed
from sendline.services import catalog
from sendline.services.campaigns import list_campaigns

FILTERS = ("brand_id", "campaign_id", "creative_id", "flow_id", "number", "carrier")
MAX_FILTER_LENGTH = 100
DELIVERY_FIGURES = ("attempted", "sent", "delivered", "undelivered", "failed", "unknown", "segments",
                    "replies", "opt_outs")
# Number health: a number with fewer texts than this is not judged.
HEALTH_MIN_SENT = 50
HEALTH_RULE = ("score = 100 x delivery rate - 3 x carrier-filtered (30007) % - 5 x opt-out %, "
               "between 0 and 100; judged from 50 texts sent; flagged under the threshold (default 70)")
HEALTH_THRESHOLD = 70


@dataclass(frozen=True)
class Scope:
    """Where a report reads: a counter scope, and a carrier within it when filtered by one."""

    scope: str
    carrier: str | None = None  # read from the scope's `c|carrier|…` split

    @property
    def figures(self) -> tuple[str, ...]:
        """The delivery figures kept where this scope reads: a carrier's split has four."""
        return BY_CARRIER if self.carrier else DELIVERY_FIGURES

    def pick(self, counters: Mapping[str, int]) -> dict[str, int]:
        if self.carrier is None:
            return dict(counters)
        return {name: counters.get(carrier_counter(self.carrier, name), 0) for name in BY_CARRIER}


def scope_of(filters: Mapping[str, str | None]) -> Scope:
    """The counter scope the filters select (see the module's docstring)."""
    given = {k: v.strip() for k, v in filters.items() if k in FILTERS and v and v.strip()}
    for name, value in given.items():
        if len(value) > MAX_FILTER_LENGTH:
            raise ValidationFailed(FieldProblem(name, f"must be at most {MAX_FILTER_LENGTH} characters"))
    carrier = carrier_name(given.pop("carrier")) if "carrier" in given else None
    creative = given.pop("creative_id", None)
    if creative and "campaign_id" not in given:
        raise ValidationFailed(FieldProblem("creative_id", "needs campaign_id, the campaign it belongs to"))
    if len(given) > 1:
        second = sorted(given)[1]
        raise ValidationFailed(FieldProblem(second, f"cannot be combined with {sorted(given)[0]}: "
                                                    "filter by one of brand_id, campaign_id, flow_id, number"))
    if not given:
        return Scope(f"CARRIER#{carrier}") if carrier else Scope("ALL")
    name, value = next(iter(given.items()))
    prefix = {"brand_id": "BRAND", "campaign_id": "CAMP", "flow_id": "FLOW", "number": "NUM"}[name]
    if creative:
        return Scope(f"CREATIVE#{value}#{creative}", carrier)
    return Scope(f"{prefix}#{value}", carrier)


# -- reading --------------------------------------------------------------------------------------
def totals(records: Records, scopes: Iterable[str], when: Period) -> dict[str, Counter[str]]:
    """Each scope's counters summed over the period: one batched read of every key."""
    wanted = list(dict.fromkeys(scopes))
    buckets = when.buckets()
    read = records.counters([(scope, bucket) for scope in wanted for bucket in buckets])
    found: dict[str, Counter[str]] = {scope: Counter() for scope in wanted}
    for (scope, _), values in read.items():
        found[scope].update(values)
    return found


def by_hour(records: Records, scope: str, when: Period) -> list[tuple[datetime, dict[str, int]]]:
    hours = when.hours()
    read = records.counters([(scope, bucket) for bucket, _ in hours])
    return [(moment, read[(scope, bucket)]) for bucket, moment in hours]


def by_day(records: Records, scope: str, when: Period) -> list[tuple[str, dict[str, int]]]:
    days = when.days()
    read = records.counters([(scope, bucket) for bucket, _ in days])
    return [(f"{day:%Y-%m-%d}", read[(scope, bucket)]) for bucket, day in days]


def rate(part: int, whole: int) -> float:
    """A percentage with two decimals; 0.0 of nothing."""
    return round(100.0 * part / whole, 2) if whole else 0.0


def money(micros: int) -> float:
    return round(micros / 1_000_000, 4)


def delivery_figures(c: Mapping[str, int], names: Iterable[str] = DELIVERY_FIGURES) -> dict[str, Any]:
    """What a set of texts did: counts and the rates the dashboard shows. The delivery rate is
    delivered over what the carrier accepted; the fail rate is undelivered and failed over what
    the carrier was asked to send (over what it accepted where only that is kept)."""
    figures: dict[str, Any] = {name: int(c.get(name, 0)) for name in names}
    figures["delivery_rate"] = rate(c.get("delivered", 0), c.get("sent", 0))
    figures["fail_rate"] = rate(c.get("undelivered", 0) + c.get("failed", 0), c.get("attempted", 0) or c.get("sent", 0))
    return figures


# -- the reports ----------------------------------------------------------------------------------
def delivery_trend(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Sent, delivered and failed per hour or per day (`bucket`), and the delivery rate."""
    step = query.get("bucket") or "day"
    if step not in ("hour", "day"):
        raise ValidationFailed(FieldProblem("bucket", "must be hour or day"))
    limit = MAX_HOURLY_DAYS if step == "hour" else 366
    when = period(query.get("from"), query.get("to"), now, records.timezone, default_days=7 if step == "hour" else 30,
                  max_days=limit)
    where = scope_of(query)
    if step == "hour":
        rows = [(moment.strftime("%Y-%m-%dT%H:00:00Z"), values) for moment, values in by_hour(records, where.scope, when)]
    else:
        rows = by_day(records, where.scope, when)
    return {"period": when.describe(), "bucket": step, "scope": where.scope, "carrier": where.carrier,
            "points": [{"at": at, **delivery_figures(where.pick(values), where.figures)} for at, values in rows]}


def carrier_rates(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Each carrier's share of the texts sent (the mix) and its delivery rate, from the scope's
    per-carrier split."""
    if query.get("carrier"):
        raise ValidationFailed(FieldProblem("carrier", "this report is by carrier: filter by another field"))
    when = period(query.get("from"), query.get("to"), now, records.timezone)
    where = scope_of(query)
    summed = totals(records, [where.scope], when)[where.scope]
    carriers: dict[str, dict[str, int]] = {}
    for name, value in summed.items():
        if name.startswith("c|"):
            _, carrier, counter = name.split("|", 2)
            carriers.setdefault(carrier, {})[counter] = value
    all_sent = sum(c.get("sent", 0) for c in carriers.values())
    rows = [{"carrier": carrier, **delivery_figures(c, BY_CARRIER), "share_of_sent": rate(c.get("sent", 0), all_sent)}
            for carrier, c in carriers.items()]
    rows.sort(key=lambda r: (-r["sent"], r["carrier"]))
    return {"period": when.describe(), "scope": where.scope, "carriers": rows}


def heatmap(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Sends and delivery rate by day of the week and hour of the day, in UTC, each cell the
    sum over the period's hours that fall in it (a text counts in the hour it was attempted)."""
    when = period(query.get("from"), query.get("to"), now, records.timezone, default_days=28,
                  max_days=MAX_HOURLY_DAYS)
    where = scope_of(query)
    cells = [[Counter() for _ in range(24)] for _ in range(7)]
    for moment, values in by_hour(records, where.scope, when):
        utc = moment.astimezone(UTC)
        cells[utc.weekday()][utc.hour].update(where.pick(values))
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    return {"period": when.describe(), "scope": where.scope, "timezone": "UTC",
            "rows": [{"day": days[d], "hours": [{"hour": h, "sent": cells[d][h].get("sent", 0),
                                                 "delivered": cells[d][h].get("delivered", 0),
                                                 "delivery_rate": rate(cells[d][h].get("delivered", 0),
                                                                       cells[d][h].get("sent", 0))}
                                                for h in range(24)]}
                     for d in range(7)]}


def creative_performance(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Each creative of a campaign: sent, delivered %, replies, opt-outs, cost and cost per
    delivered text."""
    campaign_id = (query.get("campaign_id") or "").strip()
    if not campaign_id:
        raise ValidationFailed(FieldProblem("campaign_id", "is required: creatives belong to a campaign"))
    from sendline.services.campaigns import get_campaign

    campaign = get_campaign(records, campaign_id)
    when = period(query.get("from"), query.get("to"), now, records.timezone)
    scopes = {c["creative_id"]: f"CREATIVE#{campaign_id}#{c['creative_id']}" for c in campaign["creatives"]}
    read = totals(records, scopes.values(), when)
    rows = []
    for creative in campaign["creatives"]:
        c = read[scopes[creative["creative_id"]]]
        rows.append({"creative_id": creative["creative_id"], "body": creative["body"], "weight": creative["weight"],
                     **delivery_figures(c), "reply_rate": rate(c.get("replies", 0), c.get("sent", 0)),
                     "opt_out_rate": rate(c.get("opt_outs", 0), c.get("sent", 0)),
                     "cost": money(c.get("cost_micros", 0)),
                     "cost_per_delivered": money(c.get("cost_micros", 0) // c["delivered"]) if c.get("delivered") else None})
    return {"period": when.describe(), "campaign_id": campaign_id, "creatives": rows}


def error_codes(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Failures by the carrier's error code, each with its meaning and class."""
    when = period(query.get("from"), query.get("to"), now, records.timezone)
    where = scope_of(query)
    if where.carrier:
        raise ValidationFailed(FieldProblem("carrier", "error codes are kept per scope, not per carrier within one: "
                                                       "filter by carrier alone"))
    summed = totals(records, [where.scope], when)[where.scope]
    codes = {name[2:]: value for name, value in summed.items() if name.startswith("e|") and value}
    failures = sum(codes.values())
    rows = [{"code": code, "count": count, "share_of_failures": rate(count, failures),
             "meaning": describe(code).meaning, "class": describe(code).kind}
            for code, count in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"period": when.describe(), "scope": where.scope, "failures_with_code": failures, "codes": rows}


def health_score(c: Mapping[str, int]) -> float | None:
    """HEALTH_RULE, or None when the number has sent too little to judge."""
    sent = c.get("sent", 0)
    if sent < HEALTH_MIN_SENT:
        return None
    delivered = c.get("delivered", 0) / sent
    filtered_pct = 100.0 * c.get("e|30007", 0) / (c.get("attempted", 0) or sent)
    opt_out_pct = 100.0 * c.get("opt_outs", 0) / sent
    return round(max(0.0, min(100.0, 100.0 * delivered - 3 * filtered_pct - 5 * opt_out_pct)), 1)


def number_health(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Each sending number: volume, delivery rate, carrier-filtered rate, opt-out rate, and the
    health score (HEALTH_RULE); numbers under the threshold are flagged."""
    threshold = _threshold(query.get("threshold"))
    when = period(query.get("from"), query.get("to"), now, records.timezone)
    numbers = catalog.list_numbers(records, brand_id=(query.get("brand_id") or None))
    read = totals(records, [f"NUM#{n['number']}" for n in numbers], when)
    rows = []
    for number in numbers:
        c = read[f"NUM#{number['number']}"]
        score = health_score(c)
        rows.append({"number": number["number"], "brand_id": number.get("brand_id"), "type": number.get("type"),
                     "status": number.get("status"), **delivery_figures(c),
                     "filtered_30007": c.get("e|30007", 0),
                     "filtered_rate": rate(c.get("e|30007", 0), c.get("attempted", 0) or c.get("sent", 0)),
                     "opt_out_rate": rate(c.get("opt_outs", 0), c.get("sent", 0)),
                     "health_score": score, "flagged": score is not None and score < threshold})
    rows.sort(key=lambda r: (r["health_score"] is None, r["health_score"] or 0, r["number"]))
    return {"period": when.describe(), "rule": HEALTH_RULE, "threshold": threshold, "numbers": rows}


def _threshold(text: str | None) -> float:
    if not text:
        return HEALTH_THRESHOLD
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise ValidationFailed(FieldProblem("threshold", "must be a number from 0 to 100"))
    return value


def volume(records: Records, query: Mapping[str, str | None], now: datetime) -> dict[str, Any]:
    """Daily send volume, volume by brand, the campaigns that sent in the period, and inbound
    texts by the number they came to."""
    when = period(query.get("from"), query.get("to"), now, records.timezone, default_days=30)
    where = scope_of(query)
    brands = catalog.list_brands(records)
    numbers = catalog.list_numbers(records)
    campaigns = list_campaigns(records)
    scopes = ([f"BRAND#{b['brand_id']}" for b in brands] + [f"NUM#{n['number']}" for n in numbers]
              + [f"CAMP#{c['campaign_id']}" for c in campaigns])
    read = totals(records, scopes, when)
    daily = [{"day": day, "sent": where.pick(values).get("sent", 0), "delivered": where.pick(values).get("delivered", 0),
              "segments": values.get("segments", 0) if not where.carrier else None}
             for day, values in by_day(records, where.scope, when)]
    by_brand = [{"brand_id": b["brand_id"], "name": b.get("name"), **delivery_figures(read[f"BRAND#{b['brand_id']}"])}
                for b in brands]
    in_period = [{"campaign_id": c["campaign_id"], "name": c.get("name"), "status": c.get("status"),
                  **delivery_figures(read[f"CAMP#{c['campaign_id']}"])}
                 for c in campaigns if read[f"CAMP#{c['campaign_id']}"].get("attempted", 0)]
    inbound = [{"number": n["number"], "inbound": read[f"NUM#{n['number']}"].get("inbound", 0),
                "opt_outs": read[f"NUM#{n['number']}"].get("inbound_opt_out", 0),
                "by_intent": {k[len("inbound_"):]: v for k, v in read[f"NUM#{n['number']}"].items()
                              if k.startswith("inbound_") and v}}
               for n in numbers if read[f"NUM#{n['number']}"].get("inbound", 0)]
    return {"period": when.describe(), "scope": where.scope, "daily": daily, "by_brand": by_brand,
            "campaigns": in_period, "by_inbound_number": sorted(inbound, key=lambda r: (-r["inbound"], r["number"]))}
