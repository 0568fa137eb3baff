"""A seeded, randomized run of the platform through its handlers and services against moto:
brands, sending numbers, flows with drips, campaigns with creatives and phone validation,
quick sends, over many hours; the carrier accepts, refuses, loses or defers texts, and its
receipts come late, twice and out of order; recipients reply, ask for help and opt out.

The reports and the recount are checked against what this leaves in the table. Everything is
drawn from one `random.Random(seed)`, so a seed always gives the same run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from sendline import runtime
from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.twilio import Accepted, OutcomeUnknown, Rejected, TryLater
from sendline.services.dispatch import dispatch_tick
from sendline.services.drips import run_due_messages
from sendline.services.sending import RetryLater, send_message
from tests.integration.conftest import INTEGRATOR, OPERATOR, TWILIO_TOKEN, form

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # a Tuesday, 09:00 in New York
STATUS_URL = "https://api.sendline.test/webhooks/twilio/status"
INBOUND_URL = "https://api.sendline.test/webhooks/twilio/inbound"
CARRIERS = ("Verizon Wireless", "T-Mobile USA, Inc.", "AT&T Wireless", "US Cellular")
# New York, Chicago, Los Angeles, Denver: big enough windows for texts all day long in UTC.
AREA_CODES = ("212", "312", "213", "303", "646", "718")


@dataclass
class Lookup:
    valid: bool
    activity_score: int
    line_type: str
    carrier: str
    provider: str = "activity_score"


class FakeLookups:
    """The validation provider: each phone's carrier, drawn once."""

    def __init__(self, carriers: dict[str, str]):
        self.carriers = carriers
        self.calls = 0

    def __call__(self, provider: str) -> FakeLookups:
        return self

    def lookup(self, phone: str) -> Lookup:
        self.calls += 1
        return Lookup(True, 90, "mobile", self.carriers[phone])


class FakeCarrier:
    """Accepts most texts; refuses some for good, loses the answer to a few, defers others."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.accepted: list[str] = []
        self.sids = 0

    def send(self, *, to: str, from_: str, body: str) -> Any:
        roll = self.rng.random()
        if roll < 0.06:
            return Rejected(self.rng.choice(["21211", "21614", "21610"]), "refused", 400)
        if roll < 0.08:
            return OutcomeUnknown("read timeout")
        if roll < 0.14:
            return TryLater("429 Too Many Requests", "20429", None)
        self.sids += 1
        sid = f"SM{self.sids:032x}"
        self.accepted.append(sid)
        segments = 2 if len(body) > 160 else 1
        return Accepted(sid, "queued", segments, self.rng.choice([None, None, f"-{0.0079 * segments:.5f}"]))


@dataclass
class Run:
    seed: int
    brands: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    flows: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    receipts_posted: int = 0
    inbound_posted: int = 0
    texts_attempted: int = 0
    end: datetime = START


def _ok(result, status=(200, 201, 202)):
    assert result.status in status, result.body
    return result.body


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        phone = f"+1{rng.choice(AREA_CODES)}555{rng.randrange(100, 10000):04d}"
        if phone not in used:
            used.add(phone)
            return phone


def seeded_run(fns, monkeypatch: pytest.MonkeyPatch, seed: int = 7, hours: int = 30, leads_per_hour: int = 6,
               contacts: int = 120, quick_sends: int = 10) -> Run:
    rng = random.Random(seed)
    run = Run(seed)
    now = {"value": START}
    from sendline import http

    for function in ("lead_submit", "legacy_api", "operator_api", "campaign_api", "contacts_import", "dlr_webhook"):
        module = fns.module(function)
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", lambda: now["value"])
    monkeypatch.setattr(http, "utcnow", lambda: now["value"])
    real_send = SendQueue.send
    monkeypatch.setattr(SendQueue, "send", lambda self, requests, delay_s=0: real_send(self, requests, 0))
    records, queue = runtime.records(), runtime.send_queue()

    # The account: billing rates, carrier fees, validation for campaigns.
    _ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={
        "validation": {"enabled_for_campaigns": True, "min_score": 0, "cost_per_lookup": 0.004},
        "billing": {"rate_per_segment": 0.02, "carrier_fees_per_segment": {"T-Mobile": 0.003, "AT&T": 0.002}},
        "auto_pause": {"error_rate_threshold_pct": 0}}))
    for b, (name, count) in enumerate((("Acme Auto", 3), ("Zen Insurance", 2))):
        brand = _ok(fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
            "name": name, "call_number": f"888555012{b}"}))
        run.brands.append(brand)
        for n in range(count):
            number = f"+1212555{900 + 10 * b + n:04d}"
            _ok(fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body={
                "number": number, "brand_id": brand["brand_id"], "mps": 50}))
            run.numbers.append(number)
        if b == 0:
            _ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={
                "billing": {"brand_rates_per_segment": {brand["brand_id"]: 0.025}}}))
    for b, brand in enumerate(run.brands):
        flow = _ok(fns.http("POST", "/v1/flows", headers=OPERATOR, json_body={
            "name": f"Flow {b}", "from_number": run.numbers[0 if b == 0 else 3], "call_number": "+18885550123",
            "initial_message": "Hi {first_name}, your quote is ready. Call {call_number}.",
            "drips": [{"delay_minutes": 90, "message": "{first_name}, still looking?"}]}))
        run.flows.append(flow["flow_id"])

    used: set[str] = set()
    carriers: dict[str, str] = {}
    lookups = FakeLookups(carriers)
    for c, brand in enumerate(run.brands):
        phones = [_phone(rng, used) for _ in range(contacts // 2)]
        for phone in phones:
            carriers[phone] = rng.choice(CARRIERS)
        listed = _ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": f"List {c}"}))
        csv_text = "First Name,Phone\n" + "".join(f"Pat{i},{p}\n" for i, p in enumerate(phones))
        _ok(fns.http("POST", f"/v1/contact-lists/{listed['list_id']}/imports?filename=l.csv",
                     headers={**OPERATOR, "content-type": "text/csv"}, body=csv_text))
        assert fns.drain_imports() == 1
        creatives = [{"body": "Hi {first_name}, December deal: call {call_number}", "weight": 2},
                     {"body": "{first_name}, your rate dropped. {call_number}", "weight": 1}][: 2 - c]
        made = _ok(fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body={
            "name": f"Campaign {c}", "brand_id": brand["brand_id"], "list_id": listed["list_id"],
            "rate_per_second": 5, "send_window": {"start": "00:00", "end": "24:00"}, "creatives": creatives}))
        launch_at = (START + timedelta(hours=2 + 5 * c)).isoformat().replace("+00:00", "Z")
        _ok(fns.http("POST", f"/v1/campaigns/{made['campaign_id']}/launch", headers=OPERATOR,
                     json_body={"start_at": launch_at}))
        run.campaigns.append(made["campaign_id"])

    carrier = FakeCarrier(rng)
    pending_receipts: list[tuple[datetime, dict[str, str]]] = []
    retry: list[SendRequest] = []
    sent_to: dict[str, tuple[str, str]] = {}  # sid -> (to, from)
    quick_left = quick_sends

    def post(url: str, path: str, params: dict[str, str]) -> None:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        _ok(fns.http("POST", path, body=form(params), headers={
            "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}))

    def drain_worker(moment: datetime) -> None:
        nonlocal retry
        requests = list(retry)
        retry = []
        while True:
            got = fns.sqs.receive_message(QueueUrl=fns.queues["sends"].url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for message in got:
                requests.append(SendRequest.from_body(message["Body"]))
                fns.sqs.delete_message(QueueUrl=fns.queues["sends"].url, ReceiptHandle=message["ReceiptHandle"])
        for offset, request in enumerate(requests):
            at = moment + timedelta(seconds=offset)
            accepted_before = len(carrier.accepted)
            try:
                result = send_message(records, carrier, request, at, lookups=lookups, wait=lambda s: None,
                                      monotonic=lambda: 0.0)
            except RetryLater:
                retry.append(request)
                continue
            if result.value in ("sent", "failed", "unknown"):
                run.texts_attempted += 1
            if len(carrier.accepted) > accepted_before:
                sid = carrier.accepted[-1]
                stored = records.get_message(request.message_id)
                sent_to[sid] = (stored["to"], stored["from_number"])
                _plan_receipts(rng, sid, stored, at, pending_receipts)

    for hour in range(hours):
        moment = START + timedelta(hours=hour)
        now["value"] = moment
        for _ in range(leads_per_hour):
            phone = _phone(rng, used)
            _ok(fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={
                "flow_id": rng.choice(run.flows), "phone": phone, "first_name": rng.choice(["Ann", "Bob", "Cy"])}))
        if quick_left and rng.random() < 0.5:
            quick_left -= 1
            _ok(fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
                "to": _phone(rng, used), "brand_id": rng.choice(run.brands)["brand_id"],
                "body": "Your appointment is confirmed. Call {call_number} to change it."}))
        if rng.random() < 0.2:  # an operator lists a number that will be texted
            _ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": rng.choice(sorted(used))}))
        run_due_messages(records, queue, moment)
        for _ in range(3):
            dispatch_tick(records, queue, moment)
            drain_worker(moment)
        # Receipts due by now, in a shuffled order, some twice.
        due = [p for p in pending_receipts if p[0] <= moment + timedelta(minutes=59)]
        pending_receipts[:] = [p for p in pending_receipts if p[0] > moment + timedelta(minutes=59)]
        rng.shuffle(due)
        for at, params in due:
            now["value"] = max(moment, at)
            post(STATUS_URL, "/webhooks/twilio/status", params)
            run.receipts_posted += 1
            if rng.random() < 0.15:
                post(STATUS_URL, "/webhooks/twilio/status", params)
                run.receipts_posted += 1
        # Some recipients answer.
        for sid, (to, from_number) in rng.sample(sorted(sent_to.items()), k=min(len(sent_to), 3)):
            body = rng.choice(["STOP", "stop texting me", "Yes I'm interested", "HELP", "how much?", "Stop."])
            now["value"] = moment + timedelta(minutes=30)
            inbound = {"MessageSid": f"SM{rng.getrandbits(128):032x}", "AccountSid": "AC" + "1" * 32, "From": to,
                       "To": from_number, "Body": body, "NumMedia": "0", "SmsStatus": "received"}
            post(INBOUND_URL, "/webhooks/twilio/inbound", inbound)
            run.inbound_posted += 1
            if rng.random() < 0.1:  # the carrier retries the webhook
                post(INBOUND_URL, "/webhooks/twilio/inbound", inbound)
                run.inbound_posted += 1
        run.end = moment + timedelta(hours=1)
    # The last receipts, in any order.
    rng.shuffle(pending_receipts)
    for at, params in pending_receipts:
        now["value"] = max(at, run.end)
        post(STATUS_URL, "/webhooks/twilio/status", params)
        run.receipts_posted += 1
    return run


def _plan_receipts(rng: random.Random, sid: str, message: dict[str, Any], sent_at: datetime,
                   pending: list[tuple[datetime, dict[str, str]]]) -> None:
    base = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "1" * 32, "To": message["to"],
            "From": message["from_number"], "ApiVersion": "2010-04-01"}
    roll = rng.random()
    if roll < 0.72:
        final = {"MessageStatus": "delivered"}
    elif roll < 0.9:
        final = {"MessageStatus": "undelivered", "ErrorCode": rng.choice(["30003", "30005", "30007", "30006"])}
    elif roll < 0.95:
        final = {"MessageStatus": "failed", "ErrorCode": "30008"}
    else:
        final = None  # the carrier never reports it
    late = timedelta(minutes=rng.choice([1, 5, 50, 70, 130]))
    pending.append((sent_at + timedelta(seconds=2), {**base, "MessageStatus": "sent", "SmsStatus": "sent"}))
    if final:
        pending.append((sent_at + late, {**base, **final, "SmsStatus": final["MessageStatus"]}))
