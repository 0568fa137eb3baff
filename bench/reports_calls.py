"""What each report costs after 10,000 and after 100,000 texts: DynamoDB requests and latency.

Against in-process moto, through the reports handler as API Gateway invokes it. The account has
3 brands, 12 sending numbers, 6 campaigns of 2 creatives, 2 flows and 4 carriers; the texts are
spread over the last 30 days, every hour, with the outcomes, error codes, replies and opt-outs a
real account sees. Each text's counters are the ones the send and status paths write for it
(`Counts.add_message` with the deltas the recount derives from a text as it stands), summed per
counter item before they are written, so that seeding 100,000 texts takes a minute instead of an
hour; a report reads the same items either way. Each text is also stored, with its message-log
keys, for the message log.

The claim checked: a report's requests do not grow with the number of texts.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.aws_calls import OPERATOR_TOKEN
from bench.campaign_calls import moto_functions

OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
CARRIERS = ("Verizon Wireless", "T-Mobile USA, Inc.", "AT&T Wireless", "US Cellular")
DAYS = 30
CALLS = 5  # calls of each report, for its latency


def _reports(campaign_id: str, now: datetime) -> dict[str, str]:
    week = f"from={(now - timedelta(days=7)):%Y-%m-%dT%H}:00:00Z"
    return {
        "command center": "/v1/reports/command-center",
        "delivery trend, 30 days by day": "/v1/reports/delivery-trend?bucket=day",
        "delivery trend, 7 days by hour": "/v1/reports/delivery-trend?bucket=hour",
        "carriers, 30 days": f"/v1/reports/carriers?from={(now - timedelta(days=30)):%Y-%m-%d}",
        "heatmap, 28 days": "/v1/reports/heatmap",
        "creatives, all time": f"/v1/reports/creatives?campaign_id={campaign_id}",
        "error codes, 7 days": f"/v1/reports/error-codes?{week}",
        "number health, 7 days": f"/v1/reports/numbers?{week}",
        "volume, 30 days": "/v1/reports/volume",
        "P&L by campaign, all time": "/v1/reports/pnl?group=campaign",
        "P&L by day, 30 days": "/v1/reports/pnl?group=day",
        "message log, 100 rows": "/v1/reports/messages?limit=100",
    }


def _setup(harness: Any) -> dict[str, Any]:
    def ok(method: str, path: str, body: Any) -> Any:
        status, answer = harness.http(method, path, json_body=body, headers=OPERATOR)
        assert status in (200, 201), (path, status, answer)
        return answer

    brands, numbers, campaigns, flows = [], [], [], []
    for b in range(3):
        brand = ok("POST", "/v1/brands", {"name": f"Brand {b}", "call_number": f"888555010{b}"})
        brands.append(brand["brand_id"])
        for n in range(4):
            number = f"+1212555{100 + 10 * b + n:04d}"
            ok("POST", "/v1/numbers", {"number": number, "brand_id": brand["brand_id"], "mps": 10})
            numbers.append((number, brand["brand_id"]))
    listed = ok("POST", "/v1/contact-lists", {"name": "Bench"})
    for c in range(6):
        made = ok("POST", "/v1/campaigns", {
            "name": f"Campaign {c}", "brand_id": brands[c % 3], "list_id": listed["list_id"], "rate_per_second": 5,
            "creatives": [{"body": "Hi {first_name}, call {call_number}", "weight": 2},
                          {"body": "{first_name}, your quote is ready", "weight": 1}]})
        campaigns.append((made["campaign_id"], brands[c % 3]))
    for f in range(2):
        made = ok("POST", "/v1/flows", {"name": f"Flow {f}", "from_number": numbers[f][0],
                                         "initial_message": "Hi {first_name}", "call_number": "+18885550100"})
        flows.append(made["flow_id"])
    return {"brands": brands, "numbers": numbers, "campaigns": campaigns, "flows": flows}


def _texts(count: int, account: dict[str, Any], now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    start = now - timedelta(days=DAYS)
    span = (now - start).total_seconds()
    texts = []
    for i in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        number, brand = rng.choice(account["numbers"])
        roll = rng.random()
        status, code = ("delivered", None) if roll < 0.8 else ("undelivered", rng.choice(["30003", "30005", "30007"])) \
            if roll < 0.93 else ("failed", rng.choice(["30008", "21610"])) if roll < 0.97 else ("sent", None)
        segments = 2 if rng.random() < 0.1 else 1
        text = {"message_id": f"qs_bench{i:021d}-0", "to": f"+1{rng.choice(['212', '312', '415'])}{rng.randrange(2_000_000, 9_999_999)}",
                "from_number": number, "brand_id": brand, "status": status, "attempted_at": stamp, "sent_at": stamp,
                "created_at": stamp, "carrier": rng.choice(CARRIERS), "segments": segments,
                "cost_micros": 7_900 * segments, "revenue_micros": 20_000 * segments, "fee_micros": 3_000 * segments,
                "body": "Hi Ann, call (888) 555-0100", "step": 0}
        if code:
            text["error_code"] = code
        if rng.random() < 0.7:
            campaign_id, campaign_brand = rng.choice(account["campaigns"])
            text.update(campaign_id=campaign_id, brand_id=campaign_brand, creative_id=rng.choice(["c1", "c1", "c2"]))
        else:
            text["flow_id"] = rng.choice(account["flows"])
        texts.append(text)
    return texts


def _seed(records: Any, texts: list[dict[str, Any]], rng: random.Random) -> dict[str, int]:
    from sendline.adapters.records import Counts
    from sendline.domain.clock import parse_iso
    from sendline.domain.counters import reply_deltas
    from sendline.services.recount import message_deltas

    counts = Counts(records.timezone)
    for text in texts:
        deltas, moment = message_deltas(text)
        counts.add_message(text, moment, deltas)
        answer = rng.random()
        if answer < 0.03:
            counts.add_message(text, parse_iso(text["attempted_at"]), reply_deltas("none", "replied"))
        elif answer < 0.04:
            counts.add_message(text, parse_iso(text["attempted_at"]), reply_deltas("opt_out", "opted_out"))
    started = time.perf_counter()
    items = 0
    for (scope, bucket), changes in counts.by_key.items():
        records.store.update(f"CTR#{scope}#{rng.randrange(8)}", bucket, add={k: v for k, v in changes.items() if v})
        items += 1
    records.store.batch_put(records.message_item(t, t["created_at"]) for t in texts)
    return {"counter_items": items, "seed_seconds": round(time.perf_counter() - started, 1)}


def _measure(harness: Any, meter: Any, paths: dict[str, str]) -> dict[str, Any]:
    rows = {}
    for name, path in paths.items():
        meter.phase = name
        first = len(meter.calls)
        timings = []
        for _ in range(CALLS):
            began = time.perf_counter()
            status, _ = harness.http("GET", path, headers=OPERATOR)
            timings.append((time.perf_counter() - began) * 1000)
            assert status == 200, (path, status)
        calls = [c for c in meter.calls[first:] if c.service == "dynamodb"]
        operations = Counter(c.operation for c in calls)
        rows[name] = {"dynamodb_requests": round(len(calls) / CALLS, 1),
                      "by_operation": {op: round(n / CALLS, 1) for op, n in sorted(operations.items())},
                      "rru": round(sum(c.rru for c in calls) / CALLS, 1),
                      "latency_ms_p50": round(statistics.median(timings), 1)}
    return rows


def run(messages: int = 100_000) -> dict[str, Any]:
    """Each report's requests and latency after messages/10 and after `messages` texts."""
    import boto3

    from infra import spec
    from sendline.adapters.records import Records
    from sendline.adapters.store import Store

    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    sizes = (messages // 10, messages)
    by_size: dict[int, Any] = {}
    for size in sizes:
        rng = random.Random(2026)
        with moto_functions() as (harness, meter):
            account = _setup(harness)
            # Seeded with a client of its own: the meter counts only the reports' requests.
            records = Records(Store(boto3.client("dynamodb"), spec.TABLE.name))
            seeded = _seed(records, _texts(size, account, now, rng), rng)
            paths = _reports(account["campaigns"][0][0], now)
            by_size[size] = {**seeded, "reports": _measure(harness, meter, paths)}
    small, large = (by_size[s]["reports"] for s in sizes)
    # The message log reads hour partitions until it has its page: fewer when texts are denser.
    flat = all(small[name]["dynamodb_requests"] == large[name]["dynamodb_requests"]
               for name in small if not name.startswith("message log"))
    return {"sizes": list(sizes), "by_size": {str(k): v for k, v in by_size.items()}, "requests_flat": flat}
