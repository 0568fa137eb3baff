"""Every report against an independent count of the raw records a seeded run leaves: the texts as
they stand (each counted in the hour it was attempted) and the inbound texts that answer them.

The run is randomized (late, repeated and out-of-order receipts, refusals, lost answers, replies
and opt-outs), so the reports are checked against a computation that shares no code with the
counters: a scan of the table here, in the test, and nowhere on a request path.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from sendline import runtime
from sendline.domain.error_codes import describe
from tests.integration.conftest import OPERATOR
from tests.integration.seeded_run import START, seeded_run

HOURS = 10
FROM, TO = START, START + timedelta(hours=HOURS)
PERIOD = f"from={FROM:%Y-%m-%dT%H:%M:%SZ}&to={TO:%Y-%m-%dT%H:%M:%SZ}"


def _get(fns, path):
    result = fns.http("GET", path, headers=OPERATOR)
    assert result.status == 200, result.body
    return result.body


def _rate(part, whole):
    return round(100.0 * part / whole, 2) if whole else 0.0


class Raw:
    """The run's records, counted here without the counters."""

    def __init__(self):
        items = list(runtime.records().store.scan())
        self.texts = [i for i in items if str(i.get("sk", "")).startswith("MSG") and i.get("attempted_at")]
        self.inbound = [i for i in items if i.get("sk") == "INBOUND"]
        answered = defaultdict(Counter)
        for item in self.inbound:
            if item.get("answers_message_id"):
                if item.get("action") == "opted_out":
                    answered[item["answers_message_id"]]["opt_outs"] += 1
                elif item.get("intent") != "opt_out":
                    answered[item["answers_message_id"]]["replies"] += 1
        self.answers = answered

    def within(self, start=FROM, end=TO, **match):
        def attempted(t):
            return datetime.fromisoformat(t["attempted_at"].replace("Z", "+00:00"))

        return [t for t in self.texts if start <= attempted(t) < end
                and all((t.get(k) or ("unknown" if k == "carrier" else None)) == v for k, v in match.items())]

    def figures(self, texts):
        status = Counter(t["status"] for t in texts)
        sent = sum(1 for t in texts if t.get("sent_at"))
        return {"attempted": len(texts), "sent": sent, "delivered": status["delivered"],
                "undelivered": status["undelivered"], "failed": status["failed"], "unknown": status["unknown"],
                "delivery_rate": _rate(status["delivered"], sent),
                "fail_rate": _rate(status["undelivered"] + status["failed"], len(texts))}


@pytest.fixture
def run(fns, monkeypatch):
    seeded_run(fns, monkeypatch, seed=11, hours=HOURS, leads_per_hour=4, contacts=60, quick_sends=4)
    return Raw()


def test_every_report_agrees_with_the_raw_records(fns, run):
    # -- the delivery trend, day by day and hour by hour
    daily = _get(fns, f"/v1/reports/delivery-trend?{PERIOD}&bucket=hour")
    assert len(daily["points"]) == HOURS
    for point in daily["points"]:
        hour = datetime.fromisoformat(point["at"].replace("Z", "+00:00"))
        expected = run.figures(run.within(hour, hour + timedelta(hours=1)))
        assert {k: point[k] for k in expected} == expected, point["at"]
    whole = _get(fns, f"/v1/reports/delivery-trend?{PERIOD}&bucket=day")
    assert [p["at"] for p in whole["points"]] == ["2026-12-01"]  # 14:00 to midnight
    assert sum(p["sent"] for p in whole["points"]) == run.figures(run.within())["sent"]

    # -- carriers: each one's mix and rate, overall and within a brand
    carriers = _get(fns, f"/v1/reports/carriers?{PERIOD}")["carriers"]
    sent_all = sum(1 for t in run.within() if t.get("sent_at"))
    names = {t.get("carrier") or "unknown" for t in run.within() if t.get("sent_at")}
    assert {c["carrier"] for c in carriers} == names
    for row in carriers:
        expected = run.figures([t for t in run.within(carrier=row["carrier"]) if t.get("sent_at")])
        assert (row["sent"], row["delivered"], row["delivery_rate"]) == (
            expected["sent"], expected["delivered"], expected["delivery_rate"])
        assert row["share_of_sent"] == _rate(expected["sent"], sent_all)
    brand = sorted({t["brand_id"] for t in run.within()})[0]
    verizon = _get(fns, f"/v1/reports/delivery-trend?{PERIOD}&bucket=day&brand_id={brand}&carrier=Verizon%20Wireless")
    expected = run.figures(run.within(brand_id=brand, carrier="Verizon Wireless"))
    assert sum(p["delivered"] for p in verizon["points"]) == expected["delivered"]
    assert sum(p["sent"] for p in verizon["points"]) == expected["sent"]

    # -- the heatmap in UTC
    heat = _get(fns, f"/v1/reports/heatmap?{PERIOD}")
    cells = Counter()
    for t in run.within():
        if t.get("sent_at"):
            at = datetime.fromisoformat(t["attempted_at"].replace("Z", "+00:00"))
            cells[(at.weekday(), at.hour)] += 1
    found = {(d, h["hour"]): h["sent"] for d, row in enumerate(heat["rows"]) for h in row["hours"] if h["sent"]}
    assert found == dict(cells)

    # -- creatives: sent, delivered %, replies, opt-outs, cost
    for campaign_id in sorted({t["campaign_id"] for t in run.within() if t.get("campaign_id")}):
        creatives = _get(fns, f"/v1/reports/creatives?campaign_id={campaign_id}")["creatives"]
        for row in creatives:
            texts = [t for t in run.texts if t.get("campaign_id") == campaign_id
                     and t.get("creative_id") == row["creative_id"]]
            expected = run.figures(texts)
            assert (row["sent"], row["delivered"], row["delivery_rate"]) == (
                expected["sent"], expected["delivered"], expected["delivery_rate"])
            assert row["replies"] == sum(run.answers[t["message_id"]]["replies"] for t in texts)
            assert row["opt_outs"] == sum(run.answers[t["message_id"]]["opt_outs"] for t in texts)
            assert row["cost"] == round(sum(int(t.get("cost_micros") or 0) for t in texts) / 1e6, 4)

    # -- error codes with their meaning and class
    codes = _get(fns, f"/v1/reports/error-codes?{PERIOD}")
    expected_codes = Counter(str(t["error_code"]) for t in run.within()
                             if t["status"] in ("failed", "undelivered") and t.get("error_code"))
    assert {r["code"]: r["count"] for r in codes["codes"]} == dict(expected_codes)
    for row in codes["codes"]:
        assert (row["meaning"], row["class"]) == (describe(row["code"]).meaning, describe(row["code"]).kind)
    assert describe("30007").kind == "content" and describe("30034").kind == "sender_config"

    # -- number health
    numbers = _get(fns, f"/v1/reports/numbers?{PERIOD}&threshold=99.5")
    assert numbers["threshold"] == 99.5
    for row in numbers["numbers"]:
        texts = run.within(from_number=row["number"])
        expected = run.figures(texts)
        assert {k: row[k] for k in expected} == expected, row["number"]
        assert row["filtered_30007"] == sum(1 for t in texts if str(t.get("error_code")) == "30007"
                                            and t["status"] in ("failed", "undelivered"))
        assert row["opt_out_rate"] == _rate(sum(run.answers[t["message_id"]]["opt_outs"] for t in texts),
                                            expected["sent"])
        judged = expected["sent"] >= 50
        assert (row["health_score"] is not None) is judged
        assert row["flagged"] is (judged and row["health_score"] < 99.5)

    # -- volume: by day, by brand, campaigns in the period, inbound by number
    volume = _get(fns, f"/v1/reports/volume?{PERIOD}")
    assert sum(d["sent"] for d in volume["daily"]) == run.figures(run.within())["sent"]
    for row in volume["by_brand"]:
        assert row["sent"] == run.figures(run.within(brand_id=row["brand_id"]))["sent"]
    assert {c["campaign_id"]: c["attempted"] for c in volume["campaigns"]} == dict(
        Counter(t["campaign_id"] for t in run.within() if t.get("campaign_id")))
    inbound = Counter(i["to"] for i in run.inbound)
    assert {r["number"]: r["inbound"] for r in volume["by_inbound_number"]} == dict(inbound)


def test_pnl_and_balance_agree_with_the_raw_records(fns, run):
    texts = run.texts
    by_campaign = _get(fns, "/v1/reports/pnl?group=campaign")
    for row in by_campaign["rows"]:
        mine = [t for t in texts if t.get("campaign_id") == row["campaign_id"] and t.get("sent_at")]
        assert row["segments"] == sum(int(t.get("segments") or 0) for t in mine)
        assert row["provider_cost"] == round(sum(int(t.get("cost_micros") or 0) for t in mine) / 1e6, 4)
        assert row["revenue"] == round(sum(int(t.get("revenue_micros") or 0) for t in mine) / 1e6, 4)
        assert row["carrier_fees"] == round(sum(int(t.get("fee_micros") or 0) for t in mine) / 1e6, 4)
        # validation: 0.004 a lookup, one lookup per contact attempted (30 days of cache)
        assert row["validation_cost"] == round(0.004 * len({t["to"] for t in texts
                                                             if t.get("campaign_id") == row["campaign_id"]}), 4)
        assert row["margin"] == round(row["revenue"] - row["spend"], 4)
    revenue = sum(int(t.get("revenue_micros") or 0) for t in texts if t.get("sent_at"))
    assert by_campaign["total"]["revenue"] == round(revenue / 1e6, 4)
    # Brand rates: Acme's 0.025 a segment, the other brand the default 0.02.
    rates = {t["brand_id"]: int(t["revenue_micros"]) // int(t["segments"]) for t in texts
             if t.get("sent_at") and t.get("segments")}
    assert sorted(rates.values()) == [20_000, 25_000]

    by_day = _get(fns, f"/v1/reports/pnl?group=day&{PERIOD}")
    assert [r["day"] for r in by_day["rows"]] == ["2026-12-01"]

    # The balance: top-ups less everything spent.
    added = fns.http("POST", "/v1/billing/top-ups", headers=OPERATOR, json_body={"amount": 25, "note": "card"})
    assert added.status == 201
    balance = _get(fns, "/v1/billing/balance")
    spend = by_campaign["total"]["spend"]
    assert (balance["top_ups"], balance["spend"], balance["balance"]) == (25.0, spend, round(25.0 - spend, 4))
    assert balance["low"] is True  # under the default $50 alert
    center = _get(fns, "/v1/reports/command-center")
    assert [a["kind"] for a in center["alerts"] if a["kind"] == "low_balance"] == ["low_balance"]
    assert center["total_sent"] == sum(1 for t in texts if t.get("sent_at"))
    assert center["total_spend"] == spend


def test_the_pnl_export_is_csv_safe_for_spreadsheets(fns, run):
    brand_id = _get(fns, "/v1/reports/pnl?group=brand")["rows"][0]["brand_id"]
    renamed = fns.http("PATCH", f"/v1/brands/{brand_id}", headers=OPERATOR, json_body={"name": "=HYPERLINK(1)"})
    assert renamed.status == 200, renamed.body
    result = fns.http("GET", "/v1/reports/pnl.csv?group=brand", headers=OPERATOR)
    assert result.status == 200
    assert result.headers["content-disposition"] == 'attachment; filename="pnl-by-brand.csv"'
    rows = list(csv.DictReader(io.StringIO(result.body)))
    assert sorted(r["name"] for r in rows) == ["'=HYPERLINK(1)", "Acme Auto"]  # the newest brand renamed
    assert list(rows[0]) == ["brand_id", "name", "segments", "provider_cost", "carrier_fees", "validation_cost",
                             "spend", "revenue", "margin", "margin_pct", "sent", "delivered"]
    by_brand = {r["brand_id"]: r for r in _get(fns, "/v1/reports/pnl?group=brand")["rows"]}
    assert [float(r["revenue"]) for r in rows] == [by_brand[r["brand_id"]]["revenue"] for r in rows]


@pytest.mark.parametrize(("path", "field", "reason"), [
    ("/v1/reports/delivery-trend?bucket=week", "bucket", "must be hour or day"),
    ("/v1/reports/delivery-trend?from=yesterday", "from", "must be a date or an ISO 8601 time, e.g. 2026-12-01T14:00:00Z"),
    ("/v1/reports/delivery-trend?bucket=hour&from=2026-01-01&to=2026-03-01", "to", "must be at most 31 days after from"),
    ("/v1/reports/carriers?brand_id=b&flow_id=f", "flow_id",
     "cannot be combined with brand_id: filter by one of brand_id, campaign_id, flow_id, number"),
    ("/v1/reports/carriers?creative_id=c1", "creative_id", "needs campaign_id, the campaign it belongs to"),
    ("/v1/reports/creatives", "campaign_id", "is required: creatives belong to a campaign"),
    ("/v1/reports/numbers?threshold=high", "threshold", "must be a number from 0 to 100"),
    ("/v1/reports/pnl?group=week", "group", "must be one of campaign, flow, brand, day"),
    ("/v1/reports/heatmap?brand=b", "brand", "is not a parameter of this report; use brand_id, campaign_id, carrier, "
                                             "creative_id, flow_id, from, number, to"),
])
def test_bad_report_parameters_are_named(fns, path, field, reason):
    result = fns.http("GET", path, headers=OPERATOR)
    assert result.status == 422, result.body
    assert result.body["errors"] == [{"field": field, "reason": reason}]


def test_reports_are_for_operators(fns):
    assert fns.http("GET", "/v1/reports/command-center").status == 401
    assert fns.http("POST", "/v1/billing/top-ups", json_body={"amount": 5}).status == 401


@pytest.mark.parametrize(("body", "field"), [({"amount": 0}, "amount"), ({"amount": "ten"}, "amount"),
                                             ({"amount": 5, "card": "x"}, "card")])
def test_bad_top_ups_are_refused(fns, body, field):
    result = fns.http("POST", "/v1/billing/top-ups", headers=OPERATOR, json_body=body)
    assert result.status == 422
    assert [e["field"] for e in result.body["errors"]] == [field]


def test_messages_in_a_dead_letter_queue_raise_an_alert(fns):
    # Given a send request that failed every retry and went to the sends DLQ
    fns.sqs.send_message(QueueUrl=fns.queues["sends"].dlq_url, MessageBody='{"message_id": "x"}')
    # When the Command Center is read
    alerts = _get(fns, "/v1/reports/command-center")["alerts"]
    # Then it says which queue holds how many; the empty ones say nothing
    assert [(a["kind"], a.get("queue"), a.get("messages")) for a in alerts if a["kind"] == "dead_letters"] == [
        ("dead_letters", "sends", 1)]


def test_an_empty_account_reports_zeros(fns):
    center = _get(fns, "/v1/reports/command-center")
    assert (center["total_sent"], center["delivery_rate"], center["alerts"][0]["kind"]) == (0, 0.0, "low_balance")
    trend = _get(fns, "/v1/reports/delivery-trend?from=2026-12-01&to=2026-12-01T03:00:00Z&bucket=hour")
    assert [p["sent"] for p in trend["points"]] == [0, 0, 0]
    assert datetime(2026, 12, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:00:00Z") == trend["points"][0]["at"]
