"""Every report against an independent count of the raw records of the THOUSANDS seeded run
(tests/integration/seeded_run.py): over two thousand texts from three brands and seven sending
numbers to four carriers, from six creatives, failing with eight error codes, over 47 hours of
three days, with receipts that came late, twice and out of order, and replies and opt-outs.

The reports read the counters the send and status paths keep. The figures they must equal are
worked out here from the table's items as DynamoDB holds them: each text as it stands, counted
in the hour it was attempted; the inbound texts, and the texts they answer; the leads; the phone
look-ups as they were paid for. Nothing here calls the code that keeps or reads the counters.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from boto3.dynamodb.types import TypeDeserializer

from sendline.domain.error_codes import describe
from tests.integration.conftest import OPERATOR
from tests.integration.seeded_run import (
    START,
    THOUSANDS,
    Snapshot,
    local_account,
    restore,
    thousands,
)

END = START + timedelta(hours=THOUSANDS.hours)
RUN = {"from": "2026-12-01T14:00:00Z", "to": "2026-12-04T14:00:00Z"}  # [START, END)
# A part of the run that starts and ends inside a day: read as hour and day buckets together.
PART = {"from": "2026-12-02T06:00:00Z", "to": "2026-12-03T18:00:00Z"}
LOOKUP_MICROS = 4_000  # the run's validation settings: $0.004 a look-up
LOW_BALANCE = 50.0  # the default alert threshold
HEALTH_MIN_SENT = 50  # the reports' documented rule (reports.HEALTH_RULE)
# The carriers phone validation names (campaign texts), and texts no look-up was made for.
CARRIERS = ("Verizon Wireless", "T-Mobile USA, Inc.", "AT&T Wireless", "US Cellular", "unknown")


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def money(micros: int) -> float:
    return round(micros / 1_000_000, 4)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def bounds(period: Mapping[str, str]) -> tuple[datetime, datetime]:
    return moment(period["from"]), moment(period["to"])


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


class Raw:
    """The run's records, read from DynamoDB's own item format and counted here."""

    def __init__(self, items: Iterable[Mapping[str, Any]]):
        wire = TypeDeserializer()
        decoded = [_plain({k: wire.deserialize(v) for k, v in item.items()}) for item in items]

        def kind(prefix: str, sk: str = "META") -> list[dict[str, Any]]:
            return [i for i in decoded if i["pk"].startswith(prefix + "#") and i["sk"] == sk]

        self.messages = [i for i in decoded if i.get("message_id") and i.get("status")
                         and (i["sk"] == "MSG" or i["sk"].startswith("MSG#"))]
        self.messages_by_id = {m["message_id"]: m for m in self.messages}
        self.texts = [m for m in self.messages if m.get("attempted_at")]  # the carrier was asked
        self.inbound = kind("INBOUND", "INBOUND")
        self.leads = kind("LEAD")
        self.brands = {b["brand_id"]: b for b in kind("BRAND")}
        self.numbers = {n["number"]: n for n in kind("NUMBER")}
        self.flows = {f["flow_id"]: f for f in kind("FLOW")}
        self.campaigns = {c["campaign_id"]: c for c in kind("CAMPAIGN")}
        # Phone look-ups, each paid for once, by the campaign whose contact it was (each phone
        # is in one campaign's list; leads and quick sends are not looked up).
        list_of = {i["phone"]: i["pk"][len("LIST#"):] for i in decoded
                   if i["pk"].startswith("LIST#") and i["sk"].startswith("C#")}
        campaign_of_list = {c["list_id"]: c["campaign_id"] for c in self.campaigns.values()}
        self.lookups = [{"campaign_id": campaign_of_list[list_of[i["pk"][len("INTEL#"):]]], "at": i["looked_up_at"]}
                        for i in decoded if i["pk"].startswith("INTEL#")]
        self.top_ups = [i for i in decoded if i["pk"].startswith("TOPUP#")]
        # What each inbound text did to the text it answers (the sender's latest from that number).
        self.answers: dict[str, Counter[str]] = defaultdict(Counter)
        for item in self.inbound:
            if item.get("answers_message_id"):
                if item.get("action") == "opted_out":
                    self.answers[item["answers_message_id"]]["opt_outs"] += 1
                elif item.get("intent") != "opt_out":
                    self.answers[item["answers_message_id"]]["replies"] += 1

    # -- choosing texts -------------------------------------------------------------------------
    def within(self, start: datetime | None = None, end: datetime | None = None, **where: str) -> list[dict[str, Any]]:
        """The texts attempted in [start, end) (all of them without bounds) that match `where`."""
        return [t for t in self.texts
                if (start is None or start <= moment(t["attempted_at"]) < end)
                and all(self.field(t, name) == value for name, value in where.items())]

    @staticmethod
    def field(text: Mapping[str, Any], name: str) -> str | None:
        """A text's value for a report's filter."""
        if name == "carrier":
            return text.get("carrier") or "unknown"
        return text.get("from_number" if name == "number" else name)

    # -- what a set of texts did ------------------------------------------------------------------
    def figures(self, texts: list[dict[str, Any]]) -> dict[str, Any]:
        status = Counter(t["status"] for t in texts)
        sent = [t for t in texts if t.get("sent_at")]
        return {"attempted": len(texts), "sent": len(sent), "delivered": status["delivered"],
                "undelivered": status["undelivered"], "failed": status["failed"], "unknown": status["unknown"],
                "segments": sum(t["segments"] for t in sent),
                "replies": sum(self.answers[t["message_id"]]["replies"] for t in texts),
                "opt_outs": sum(self.answers[t["message_id"]]["opt_outs"] for t in texts),
                "delivery_rate": pct(status["delivered"], len(sent)),
                "fail_rate": pct(status["undelivered"] + status["failed"], len(texts))}

    @staticmethod
    def carrier_figures(texts: list[dict[str, Any]]) -> dict[str, Any]:
        """The four figures kept for a carrier within another scope; its rates over what was sent."""
        status = Counter(t["status"] for t in texts)
        sent = sum(1 for t in texts if t.get("sent_at"))
        return {"sent": sent, "delivered": status["delivered"], "undelivered": status["undelivered"],
                "failed": status["failed"], "delivery_rate": pct(status["delivered"], sent),
                "fail_rate": pct(status["undelivered"] + status["failed"], sent)}

    @staticmethod
    def failures(texts: list[dict[str, Any]]) -> Counter[str]:
        return Counter(str(t["error_code"]) for t in texts
                       if t["status"] in ("failed", "undelivered") and t.get("error_code"))

    def money(self, texts: list[dict[str, Any]], lookups: int) -> dict[str, Any]:
        """A P&L row: what the texts cost and earned, and the look-ups paid for."""
        sent = [t for t in texts if t.get("sent_at")]
        cost, fees, revenue = (sum(t[name] for t in sent) for name in ("cost_micros", "fee_micros", "revenue_micros"))
        spend = cost + fees + lookups * LOOKUP_MICROS
        return {"segments": sum(t["segments"] for t in sent), "provider_cost": money(cost), "carrier_fees": money(fees),
                "validation_cost": money(lookups * LOOKUP_MICROS), "spend": money(spend), "revenue": money(revenue),
                "margin": money(revenue - spend), "margin_pct": pct(revenue - spend, revenue), "sent": len(sent),
                "delivered": sum(1 for t in sent if t["status"] == "delivered")}

    def lookups_in(self, start: datetime | None = None, end: datetime | None = None, **where: str) -> int:
        return sum(1 for lookup in self.lookups if (start is None or start <= moment(lookup["at"]) < end)
                   and all(self._lookup_field(lookup, k) == v for k, v in where.items()))

    def _lookup_field(self, lookup: Mapping[str, str], name: str) -> str:
        return self.campaigns[lookup["campaign_id"]]["brand_id"] if name == "brand_id" else lookup[name]

    def number_health(self, start: datetime, end: datetime, threshold: float) -> list[dict[str, Any]]:
        """Each sending number's figures and its score by the documented rule (reports.HEALTH_RULE):
        100 x delivery rate - 3 x filtered (30007) % - 5 x opt-out %, judged from 50 texts sent."""
        rows = []
        for number, kept in self.numbers.items():
            texts = self.within(start, end, from_number=number)
            figures = self.figures(texts)
            filtered = self.failures(texts)["30007"]
            score = None
            if figures["sent"] >= HEALTH_MIN_SENT:
                score = round(max(0.0, min(100.0, 100.0 * figures["delivered"] / figures["sent"]
                                           - 3 * 100.0 * filtered / figures["attempted"]
                                           - 5 * 100.0 * figures["opt_outs"] / figures["sent"])), 1)
            rows.append({"number": number, "brand_id": kept["brand_id"], "type": kept["type"], "status": kept["status"],
                         **figures, "filtered_30007": filtered, "filtered_rate": pct(filtered, figures["attempted"]),
                         "opt_out_rate": pct(figures["opt_outs"], figures["sent"]), "health_score": score,
                         "flagged": score is not None and score < threshold})
        return sorted(rows, key=lambda r: (r["health_score"] is None, r["health_score"] or 0, r["number"]))

    def inbound_within(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [i for i in self.inbound if start <= moment(i["received_at"]) < end]

    # -- the message log ----------------------------------------------------------------------------
    def log_rows(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every message created in [start, end), newest first, as the log shows it."""
        created = [m for m in self.messages if start <= moment(m["created_at"]) < end]
        created.sort(key=lambda m: (m["created_at"], m["message_id"]), reverse=True)
        return [{"time": m["created_at"], "sent_at": m.get("sent_at"), "phone": f"{m['to'][:5]}***{m['to'][-4:]}",
                 "body": m["body"], "creative_id": m.get("creative_id"), "carrier": m.get("carrier") or "unknown",
                 "brand_id": m.get("brand_id"), "from_number": m.get("from_number"), "status": m["status"],
                 "error_code": m.get("error_code"), "campaign_id": m.get("campaign_id"), "flow_id": m.get("flow_id"),
                 "message_id": m["message_id"], "segments": m.get("segments"),
                 "cost": None if m.get("cost_micros") is None else round(m["cost_micros"] / 1_000_000, 6)}
                for m in created]


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    while start < end:
        yield start
        start += timedelta(hours=1)


def days(start: datetime, end: datetime) -> list[date]:
    """The days [start, end) touches: a report by day gives each of them whole."""
    return sorted({h.date() for h in hours(start, end)})


def whole(day: date) -> tuple[datetime, datetime]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight, midnight + timedelta(days=1)


def get(fns, path: str, **params: str) -> dict[str, Any]:
    result = fns.http("GET", f"{path}?{urlencode(params)}" if params else path, headers=OPERATOR)
    assert result.status == 200, result.body
    return result.body


@pytest.fixture(scope="module")
def seeded() -> Snapshot:
    return thousands()


@pytest.fixture(scope="module")
def raw(seeded: Snapshot) -> Raw:
    return Raw(seeded.items)


def test_the_run_is_thousands_of_texts_across_brands_numbers_carriers_creatives_codes_and_hours(seeded, raw):
    # Given the THOUSANDS run, as its record and its items tell it
    run = seeded.run
    names = {b["brand_id"]: b["name"] for b in raw.brands.values()}
    creatives = Counter((raw.campaigns[t["campaign_id"]]["name"], t["creative_id"]) for t in raw.texts
                        if t.get("campaign_id"))

    # Then it is thousands of texts, across every dimension a report splits them by
    assert (len(raw.messages), len(raw.texts), run.texts_attempted) == (2249, 2171, 2171)
    assert Counter(t["pk"].split("#")[0] for t in raw.texts) == {"CMSG": 1643, "LEAD": 504, "QUICK": 24}
    assert Counter(names[t["brand_id"]] for t in raw.texts) == {"Acme Auto": 847, "Zen Insurance": 750,
                                                                "Bolt Solar": 574}
    assert Counter(t["from_number"] for t in raw.texts) == {
        "+12125550900": 390, "+12125550901": 219, "+12125550902": 238, "+12125550910": 499, "+12125550911": 251,
        "+12125550920": 355, "+12125550921": 219}
    assert Counter(raw.field(t, "carrier") for t in raw.texts) == {
        "Verizon Wireless": 439, "AT&T Wireless": 416, "T-Mobile USA, Inc.": 411, "US Cellular": 377, "unknown": 528}
    assert creatives == {("Campaign 0", "c1"): 333, ("Campaign 0", "c2"): 227, ("Campaign 0", "c3"): 132,
                         ("Campaign 1", "c1"): 349, ("Campaign 1", "c2"): 194, ("Campaign 2", "c1"): 408}
    assert raw.failures(raw.texts) == {"30007": 90, "30008": 83, "30003": 82, "30005": 80, "30006": 72,
                                       "21211": 46, "21614": 43, "21610": 36}
    assert len({t["attempted_at"][:13] for t in raw.texts}) == 47
    assert Counter(t["status"] for t in raw.messages) == {
        "delivered": 1470, "undelivered": 324, "failed": 208, "sent": 119, "scheduled": 65, "unknown": 50,
        "cancelled": 7, "skipped": 6}
    # ...with receipts posted twice, after the text's final status, and hours late
    assert (run.receipts_posted, run.receipts_repeated, run.receipts_out_of_order, run.receipts_late) == (
        2896, 307, 203, 761)
    # ...and replies (some retried by the carrier) answering texts, opt-outs among them
    assert (run.inbound_posted, run.inbound_repeated, len(raw.inbound)) == (239, 23, 216)
    assert (sum(a["replies"] for a in raw.answers.values()), sum(a["opt_outs"] for a in raw.answers.values())) == (
        115, 97)


class TestEveryReportOfTheRun:
    """The reports of one account holding the run. The tests read it; only the last one writes
    (a top-up), and reads nothing after it that another test relies on."""

    @pytest.fixture(scope="class")
    @classmethod
    def fns(cls, seeded):
        """An account of the class's own (not the `aws` fixture's, made anew for each test)."""
        with local_account() as (fns, monkeypatch):
            restore(fns, monkeypatch, seeded)
            yield fns

    def test_the_delivery_trend_agrees_hour_by_hour_and_day_by_day_in_every_scope(self, fns, raw):
        start, end = START, END
        # Hour by hour, the whole account and one brand's texts to one carrier
        hourly = get(fns, "/v1/reports/delivery-trend", **RUN, bucket="hour")["points"]
        assert [p["at"] for p in hourly] == [f"{h:%Y-%m-%dT%H}:00:00Z" for h in hours(start, end)]
        for point, hour in zip(hourly, hours(start, end)):
            assert point == {"at": point["at"], **raw.figures(raw.within(hour, hour + timedelta(hours=1)))}
        acme = next(b for b, brand in raw.brands.items() if brand["name"] == "Acme Auto")
        split = get(fns, "/v1/reports/delivery-trend", **RUN, bucket="hour", brand_id=acme, carrier="AT&T Wireless")
        assert split["points"] == [
            {"at": f"{h:%Y-%m-%dT%H}:00:00Z",
             **raw.carrier_figures(raw.within(h, h + timedelta(hours=1), brand_id=acme, carrier="AT&T Wireless"))}
            for h in hours(start, end)]

        # Day by day, in every scope: each brand, campaign, creative, flow, number and carrier
        scopes = [{}, *({"brand_id": b} for b in raw.brands), *({"campaign_id": c} for c in raw.campaigns),
                  *({"campaign_id": c["campaign_id"], "creative_id": k["creative_id"]}
                    for c in raw.campaigns.values() for k in c["creatives"]),
                  *({"flow_id": f} for f in raw.flows), *({"number": n} for n in raw.numbers),
                  *({"carrier": c} for c in CARRIERS)]
        assert len(scopes) == 1 + 3 + 3 + 6 + 3 + 7 + 5
        for scope in scopes:
            points = get(fns, "/v1/reports/delivery-trend", **RUN, bucket="day", **scope)["points"]
            assert points == [{"at": f"{d:%Y-%m-%d}", **raw.figures(raw.within(*whole(d), **scope))}
                              for d in days(start, end)], scope
        # ...and each carrier within each brand: the carrier's own split of the brand's texts
        for brand in raw.brands:
            for carrier in CARRIERS:
                points = get(fns, "/v1/reports/delivery-trend", **PART, bucket="day", brand_id=brand,
                             carrier=carrier)["points"]
                assert points == [{"at": f"{d:%Y-%m-%d}",
                                   **raw.carrier_figures(raw.within(*whole(d), brand_id=brand, carrier=carrier))}
                                  for d in days(*bounds(PART))], (brand, carrier)

    def test_the_carrier_mix_and_the_heatmap_agree(self, fns, raw):
        for period in (RUN, PART):
            start, end = bounds(period)
            for scope in [{}, *({"brand_id": b} for b in raw.brands), *({"number": n} for n in raw.numbers)]:
                texts = raw.within(start, end, **scope)
                sent = sum(1 for t in texts if t.get("sent_at"))
                by_carrier = {c: raw.carrier_figures(raw.within(start, end, carrier=c, **scope)) for c in CARRIERS}
                # A carrier is listed when any of its four figures is kept (a lost answer is not one)
                listed = {c: f for c, f in by_carrier.items() if f["sent"] or f["failed"]}
                expected = [{"carrier": c, **figures, "share_of_sent": pct(figures["sent"], sent)}
                            for c, figures in sorted(listed.items(), key=lambda kv: (-kv[1]["sent"], kv[0]))]
                assert get(fns, "/v1/reports/carriers", **period, **scope)["carriers"] == expected, (period, scope)

        heatmap = get(fns, "/v1/reports/heatmap", **RUN)
        cells: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        for text in raw.within(START, END):
            at = moment(text["attempted_at"])
            cells[(at.weekday(), at.hour)]["sent"] += bool(text.get("sent_at"))
            cells[(at.weekday(), at.hour)]["delivered"] += text["status"] == "delivered"
        weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
        assert heatmap["rows"] == [
            {"day": weekdays[d], "hours": [{"hour": h, "sent": cells[(d, h)]["sent"],
                                            "delivered": cells[(d, h)]["delivered"],
                                            "delivery_rate": pct(cells[(d, h)]["delivered"], cells[(d, h)]["sent"])}
                                           for h in range(24)]}
            for d in range(7)]
        assert sum(h["sent"] for row in heatmap["rows"] for h in row["hours"]) == 1996  # every text sent

    def test_creatives_error_codes_and_number_health_agree(self, fns, raw):
        for campaign_id, campaign in raw.campaigns.items():
            rows = get(fns, "/v1/reports/creatives", campaign_id=campaign_id)["creatives"]
            expected = []
            for creative in campaign["creatives"]:
                texts = raw.within(campaign_id=campaign_id, creative_id=creative["creative_id"])
                figures = raw.figures(texts)
                cost = sum(t["cost_micros"] for t in texts if t.get("sent_at"))
                expected.append({"creative_id": creative["creative_id"], "body": creative["body"],
                                 "weight": creative["weight"], **figures,
                                 "reply_rate": pct(figures["replies"], figures["sent"]),
                                 "opt_out_rate": pct(figures["opt_outs"], figures["sent"]), "cost": money(cost),
                                 "cost_per_delivered": money(cost // figures["delivered"])})
            assert rows == expected, campaign["name"]

        for period in (RUN, PART):
            start, end = bounds(period)
            for scope in [{}, *({"brand_id": b} for b in raw.brands), *({"campaign_id": c} for c in raw.campaigns),
                          {"carrier": "US Cellular"}]:
                codes = raw.failures(raw.within(start, end, **scope))
                failures = sum(codes.values())
                report = get(fns, "/v1/reports/error-codes", **period, **scope)
                assert report["failures_with_code"] == failures
                assert report["codes"] == [
                    {"code": code, "count": count, "share_of_failures": pct(count, failures),
                     "meaning": describe(code).meaning, "class": describe(code).kind}
                    for code, count in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))], (period, scope)

        # Number health: each number's score by the documented rule, flagged under the threshold
        # (in the part, two numbers sent under 50 texts: they are not judged)
        for period, threshold, judged, flagged in ((RUN, 70.0, 7, 7), (RUN, 48.0, 7, 5), (PART, 70.0, 5, 5),
                                                   (PART, 48.0, 5, 3)):
            report = get(fns, "/v1/reports/numbers", **period, threshold=str(threshold))
            assert report["numbers"] == raw.number_health(*bounds(period), threshold), (period, threshold)
            assert sum(r["health_score"] is not None for r in report["numbers"]) == judged
            assert sum(r["flagged"] for r in report["numbers"]) == flagged

    def test_volume_by_day_brand_campaign_and_inbound_number_agrees(self, fns, raw):
        for period in (RUN, PART):
            start, end = bounds(period)
            report = get(fns, "/v1/reports/volume", **period)
            daily = [raw.figures(raw.within(*whole(d))) for d in days(start, end)]
            assert report["daily"] == [{"day": f"{d:%Y-%m-%d}", "sent": f["sent"], "delivered": f["delivered"],
                                        "segments": f["segments"]} for d, f in zip(days(start, end), daily)]
            assert {r["brand_id"]: r for r in report["by_brand"]} == {
                b: {"brand_id": b, "name": brand["name"], **raw.figures(raw.within(start, end, brand_id=b))}
                for b, brand in raw.brands.items()}
            assert {r["campaign_id"]: r for r in report["campaigns"]} == {
                c: {"campaign_id": c, "name": campaign["name"], "status": campaign["status"],
                    **raw.figures(raw.within(start, end, campaign_id=c))}
                for c, campaign in raw.campaigns.items() if raw.within(start, end, campaign_id=c)}
            inbound = raw.inbound_within(start, end)
            by_number = Counter(i["to"] for i in inbound)
            assert report["by_inbound_number"] == [
                {"number": n, "inbound": count,
                 "opt_outs": sum(1 for i in inbound if i["to"] == n and i.get("intent") == "opt_out"),
                 "by_intent": dict(Counter(i.get("intent") or "none" for i in inbound if i["to"] == n))}
                for n, count in sorted(by_number.items(), key=lambda kv: (-kv[1], kv[0]))]
        # Campaign 0 sent on the first day: the part sees the other two
        assert sorted(r["name"] for r in get(fns, "/v1/reports/volume", **PART)["campaigns"]) == [
            "Campaign 1", "Campaign 2"]

        # Filtered by a carrier, within a brand: the carrier's split of the brand's texts by day
        brand = next(iter(raw.brands))
        report = get(fns, "/v1/reports/volume", **RUN, brand_id=brand, carrier="Verizon Wireless")
        daily = [raw.carrier_figures(raw.within(*whole(d), brand_id=brand, carrier="Verizon Wireless"))
                 for d in days(START, END)]
        assert report["daily"] == [{"day": f"{d:%Y-%m-%d}", "sent": f["sent"], "delivered": f["delivered"],
                                    "segments": None} for d, f in zip(days(START, END), daily)]

    def test_the_message_log_lists_every_text_and_each_filter_exactly_its_own(self, fns, raw):
        def listing(period: Mapping[str, str], **params: str) -> list[dict[str, Any]]:
            rows, cursor = [], None
            for _ in range(20):
                page = get(fns, "/v1/reports/messages", **period, limit="500", **params,
                           **({"cursor": cursor} if cursor else {}))
                rows += page["messages"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return rows
            raise AssertionError("the log did not end")

        # Every message created in the run, newest first, as it stands now, page by page
        expected = raw.log_rows(START, END)
        assert len(expected) == 2249
        assert listing(RUN) == expected

        # Each filter, over a night (the first campaign's last texts, leads' texts and drips):
        # exactly the messages that match it
        night = {"from": "2026-12-01T21:00:00Z", "to": "2026-12-02T06:00:00Z"}
        in_night = raw.log_rows(*bounds(night))
        assert len(in_night) == 230
        acme = next(b for b, brand in raw.brands.items() if brand["name"] == "Acme Auto")
        campaign = next(c for c, kept in raw.campaigns.items() if kept["name"] == "Campaign 0")
        flow = next(f for f, kept in raw.flows.items() if kept["name"] == "Flow 1")
        for params in ({"status": "undelivered", "carrier": "Verizon Wireless"}, {"error_code": "30007"},
                       {"campaign_id": campaign, "creative_id": "c3"}, {"flow_id": flow, "status": "delivered"},
                       {"brand_id": acme}, {"from_number": "+12125550902"}):
            wanted = [r["message_id"] for r in in_night if all(str(r[k]) == v for k, v in params.items())]
            assert wanted, params
            assert [r["message_id"] for r in listing(night, **params)] == wanted, params
        # A phone, unmasked: the lead's first text and its drip
        phone = next(m["to"] for m in raw.messages if m.get("flow_id") and m["step"] == 1
                     and m["created_at"].startswith("2026-12-01T22"))
        assert [(r["phone"], r["message_id"]) for r in listing(night, phone=phone, unmask="true")] == [
            (phone, r["message_id"]) for r in in_night if raw.messages_by_id[r["message_id"]]["to"] == phone]
        assert sum(1 for m in raw.messages if m["to"] == phone) == 2

        # The export of the night: a row per message, as the log lists them
        export = fns.http("GET", f"/v1/reports/messages.csv?{urlencode(night)}", headers=OPERATOR)
        assert export.status == 200
        assert "x-next-cursor" not in export.headers
        lines = list(csv.DictReader(io.StringIO(export.body, newline="")))
        assert [(r["message_id"], r["status"], r["error_code"], r["segments"], r["carrier"]) for r in lines] == [
            (r["message_id"], r["status"], r["error_code"] or "", "" if r["segments"] is None else str(r["segments"]),
             r["carrier"]) for r in in_night]

    def test_pnl_by_campaign_flow_brand_and_day_agrees(self, fns, raw):
        for period in (RUN, PART, {}):
            start, end = bounds(period) if period else (None, None)
            report = get(fns, "/v1/reports/pnl", **period, group="campaign")
            assert {r["campaign_id"]: r for r in report["rows"]} == {
                c: {"campaign_id": c, "name": kept["name"], "brand_id": kept["brand_id"], "status": kept["status"],
                    **raw.money(raw.within(start, end, campaign_id=c), raw.lookups_in(start, end, campaign_id=c))}
                for c, kept in raw.campaigns.items()}, period
            assert report["total"] == raw.money(raw.within(start, end), raw.lookups_in(start, end))
            report = get(fns, "/v1/reports/pnl", **period, group="flow")
            assert {r["flow_id"]: r for r in report["rows"]} == {
                f: {"flow_id": f, "name": kept["name"], **raw.money(raw.within(start, end, flow_id=f), 0)}
                for f, kept in raw.flows.items()}, period
            report = get(fns, "/v1/reports/pnl", **period, group="brand")
            assert {r["brand_id"]: r for r in report["rows"]} == {
                b: {"brand_id": b, "name": kept["name"],
                    **raw.money(raw.within(start, end, brand_id=b), raw.lookups_in(start, end, brand_id=b))}
                for b, kept in raw.brands.items()}, period
        for period in (RUN, PART):
            report = get(fns, "/v1/reports/pnl", **period, group="day")
            assert report["rows"] == [{"day": f"{d:%Y-%m-%d}", **raw.money(raw.within(*whole(d)),
                                                                           raw.lookups_in(*whole(d)))}
                                      for d in days(*bounds(period))], period
        # Each brand earns at its own rate a segment: Acme 0.025, Zen the default 0.02, Bolt 0.03
        rates = {raw.brands[t["brand_id"]]["name"]: t["revenue_micros"] // t["segments"] for t in raw.texts
                 if t.get("sent_at")}
        assert rates == {"Acme Auto": 25_000, "Zen Insurance": 20_000, "Bolt Solar": 30_000}

        # The export: the same rows as the report, cell for cell
        for group in ("campaign", "flow", "brand"):
            export = fns.http("GET", f"/v1/reports/pnl.csv?group={group}", headers=OPERATOR)
            assert export.status == 200
            rows = get(fns, "/v1/reports/pnl", group=group)["rows"]
            lines = list(csv.DictReader(io.StringIO(export.body)))
            assert [(r[f"{group}_id"], float(r["spend"]), float(r["revenue"]), int(r["sent"])) for r in lines] == [
                (r[f"{group}_id"], r["spend"], r["revenue"], r["sent"]) for r in rows]

    def test_the_balance_and_the_command_center_agree(self, fns, raw):
        spend = raw.money(raw.texts, len(raw.lookups))["spend"]
        assert raw.top_ups == []
        # Given a top-up of $25 (this class's only write)
        added = fns.http("POST", "/v1/billing/top-ups", headers=OPERATOR, json_body={"amount": 25, "note": "card"})
        assert added.status == 201

        # When the balance and the Command Center are read
        balance = get(fns, "/v1/billing/balance")
        center = get(fns, "/v1/reports/command-center")

        # Then the balance is the top-up less everything spent, all time
        assert balance == {"top_ups": 25.0, "spend": spend, "balance": round(25.0 - spend, 4),
                           "low_balance_alert": LOW_BALANCE, "low": True}
        # ...and the Command Center's figures are the raw records' own
        today = raw.within(datetime(2026, 12, 4, tzinfo=UTC), END)
        pending_drips = sum(1 for m in raw.messages if m["step"] > 0 and m["status"] == "scheduled")
        totals = raw.figures(raw.texts)
        assert {k: center[k] for k in (*totals, "failed_total", "total_sent", "sent_today", "delivered_today", "leads",
                                       "leads_today", "pending_dlr", "pending_drips", "active_campaigns",
                                       "active_flows", "total_spend", "revenue", "balance", "live_campaigns")} == {
            **totals, "failed_total": totals["failed"] + totals["undelivered"], "total_sent": totals["sent"],
            "sent_today": raw.figures(today)["sent"], "delivered_today": raw.figures(today)["delivered"],
            "leads": len(raw.leads), "leads_today": sum(1 for lead in raw.leads if lead["created_at"] >= "2026-12-04"),
            "pending_dlr": sum(1 for t in raw.texts if t["status"] == "sent"), "pending_drips": pending_drips,
            "active_campaigns": 0, "active_flows": 3, "total_spend": spend,
            "revenue": raw.money(raw.texts, 0)["revenue"], "balance": balance, "live_campaigns": []}
        assert (center["total_sent"], center["leads"], center["pending_dlr"], center["pending_drips"]) == (
            1996, 288, 119, 48)
        # ...and its alerts: every number under 70 over the last 7 days, and the low balance
        unhealthy = [(n["number"], n["health_score"]) for n in raw.number_health(START, END, 70.0) if n["flagged"]]
        assert [(a["kind"], a.get("number"), a.get("health_score")) for a in center["alerts"]] == [
            *(("unhealthy_number", number, score) for number, score in unhealthy), ("low_balance", None, None)]


def test_the_pnl_export_is_csv_safe_for_spreadsheets(fns):
    # Given two brands, one named like a spreadsheet formula
    for name in ("=HYPERLINK(1)", "Acme Auto"):
        assert fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={"name": name}).status == 201

    # When the P&L by brand is exported
    result = fns.http("GET", "/v1/reports/pnl.csv?group=brand", headers=OPERATOR)

    # Then the formula is made text, and the columns are the report's
    assert result.status == 200
    assert result.headers["content-disposition"] == 'attachment; filename="pnl-by-brand.csv"'
    rows = list(csv.DictReader(io.StringIO(result.body)))
    assert sorted(r["name"] for r in rows) == ["'=HYPERLINK(1)", "Acme Auto"]
    assert list(rows[0]) == ["brand_id", "name", "segments", "provider_cost", "carrier_fees", "validation_cost",
                             "spend", "revenue", "margin", "margin_pct", "sent", "delivered"]
    assert [(r["segments"], r["spend"], r["margin_pct"]) for r in rows] == [("0", "0.0", "0.0"), ("0", "0.0", "0.0")]


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
    alerts = get(fns, "/v1/reports/command-center")["alerts"]
    # Then it says which queue holds how many; the empty ones say nothing
    assert [(a["kind"], a.get("queue"), a.get("messages")) for a in alerts if a["kind"] == "dead_letters"] == [
        ("dead_letters", "sends", 1)]


def test_an_empty_account_reports_zeros(fns):
    center = get(fns, "/v1/reports/command-center")
    assert (center["total_sent"], center["delivery_rate"], center["alerts"][0]["kind"]) == (0, 0.0, "low_balance")
    trend = get(fns, "/v1/reports/delivery-trend", **{"from": "2026-12-01", "to": "2026-12-01T03:00:00Z"},
                bucket="hour")
    assert [p["sent"] for p in trend["points"]] == [0, 0, 0]
    assert trend["points"][0]["at"] == "2026-12-01T00:00:00Z"
