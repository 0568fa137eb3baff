"""A seeded, randomized run of the platform through its handlers and services against moto:
three brands and their sending numbers, a lead flow with a drip per brand, a campaign per brand
with its creatives and phone validation, quick sends, over days; the carrier accepts, refuses,
loses or defers texts, and its receipts come late, twice and out of order; recipients reply,
ask for help and opt out, and the operator adds numbers to the DNC list.

The reports and the recount are checked against what this leaves in the table. Everything is
drawn from one `random.Random(seed)`, and the ids the platform issues and the jitter of its
retries are drawn from that seed too, so a seed always gives the same run, text for text.

`THOUSANDS` is the run the reports and the recount are proven on: over two thousand texts in
three days. It is seeded through the same doors as production traffic (the lead API, the
operator API, the contact-list import, the dispatcher, the drip scheduler, the send worker's
service, the carrier webhooks); the test driver only keeps its own round trips few (a batch
delete per batch received, the carrier's answer kept instead of read back) and moto's generic
work per request small (tests/integration/moto_fast_paths.py). It is made once per test
session (`thousands`), and `restore` writes what it left in the table into a test's account.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from twilio.request_validator import RequestValidator

from infra import spec
from sendline import runtime
from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.twilio import Accepted, OutcomeUnknown, Rejected, TryLater
from sendline.domain import ids
from sendline.services.dispatch import dispatch_tick
from sendline.services.drips import run_due_messages
from sendline.services.sending import RetryLater, send_message
from tests.integration.conftest import (
    INTEGRATOR,
    OPERATOR,
    TWILIO_TOKEN,
    Functions,
    form,
    moto_account,
    steady_send_clock,
)
from tests.integration.moto_fast_paths import use_fast_paths

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # a Tuesday, 09:00 in New York
STATUS_URL = "https://api.sendline.test/webhooks/twilio/status"
INBOUND_URL = "https://api.sendline.test/webhooks/twilio/inbound"
CARRIERS = ("Verizon Wireless", "T-Mobile USA, Inc.", "AT&T Wireless", "US Cellular")
# New York, Chicago, Los Angeles, Denver: big enough windows for texts all day long in UTC.
AREA_CODES = ("212", "312", "213", "303", "646", "718")
# Each brand: its name, how many sending numbers it has, its campaign's creatives (weights) and
# its share of the campaigns' contacts.
BRANDS = (("Acme Auto", 3, (3, 2, 1), 0.42), ("Zen Insurance", 2, (2, 1), 0.33), ("Bolt Solar", 2, (1,), 0.25))
CREATIVE_BODIES = ("Hi {first_name}, December deal: call {call_number}", "{first_name}, your rate dropped. {call_number}",
                   "{first_name}, a quote in 2 minutes? {call_number}")
REPLIES = ("STOP", "stop texting me", "Yes I'm interested", "HELP", "how much?", "Stop.", "UNSUBSCRIBE", "call me")
# Functions whose clock the run sets (the reports' too, so "today" is the run's day).
CLOCKED = ("lead_submit", "legacy_api", "operator_api", "campaign_api", "contacts_import", "dlr_webhook", "reports")


@dataclass(frozen=True)
class Scale:
    """How much a run does: hours of traffic, leads an hour, campaign contacts (shared among the
    brands), quick sends, and replies an hour."""

    hours: int
    leads_per_hour: int
    contacts: int
    quick_sends: int
    replies_per_hour: int = 3


# Over two thousand texts (the campaigns' contacts, each lead's first text and its drip, the
# quick sends) across three days: every hour of a Tuesday afternoon to a Friday afternoon.
THOUSANDS = Scale(hours=72, leads_per_hour=4, contacts=1650, quick_sends=24)


@dataclass(frozen=True)
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
    """Accepts most texts; refuses some for good, loses the answer to a few, defers others.
    Remembers whom each accepted text went to and from, as its receipts will say."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.accepted: dict[str, tuple[str, str]] = {}  # sid -> (to, from)
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
        self.accepted[sid] = (to, from_)
        segments = 2 if len(body) > 160 else 1
        return Accepted(sid, "queued", segments, self.rng.choice([None, None, f"-{0.0079 * segments:.5f}"]))


class SeededIds:
    """What `sendline.domain.ids` draws an id from: the run's clock and the run's seed, so the
    same seed issues the same ids (and a campaign the same creative to each contact)."""

    def __init__(self, seed: int, clock: dict[str, datetime]):
        self.rng = random.Random(seed)
        self.clock = clock

    def randbits(self, bits: int) -> int:
        return self.rng.getrandbits(bits)

    def time(self) -> float:
        return self.clock["value"].timestamp()


@dataclass
class Run:
    seed: int
    scale: Scale
    clock: dict[str, datetime]
    brands: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    flows: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    receipts_posted: int = 0
    # Receipts posted a second time, `sent` receipts posted after their text's final status,
    # and receipts posted in a later hour than their text was sent in.
    receipts_repeated: int = 0
    receipts_out_of_order: int = 0
    receipts_late: int = 0
    inbound_posted: int = 0
    inbound_repeated: int = 0
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


@contextmanager
def local_account() -> Iterator[tuple[Functions, pytest.MonkeyPatch]]:
    """The account the `aws` and `fns` fixtures give one test, for tests that share one run:
    the same settings, resources, integrator key and send-worker clock, until the block ends."""
    with pytest.MonkeyPatch.context() as monkeypatch, moto_account(monkeypatch) as account:
        steady_send_clock(monkeypatch)
        yield Functions(account["queues"]), monkeypatch


def seeded_run(fns, monkeypatch: pytest.MonkeyPatch, seed: int = 7, scale: Scale = THOUSANDS) -> Run:
    rng = random.Random(seed)
    now = {"value": START}
    run = Run(seed, scale, now)
    from sendline import http

    use_fast_paths(monkeypatch)
    for function in CLOCKED:
        module = fns.module(function)
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", lambda: now["value"])
    monkeypatch.setattr(http, "utcnow", lambda: now["value"])
    seeded = SeededIds(seed, now)
    monkeypatch.setattr(ids, "secrets", seeded)
    monkeypatch.setattr(ids, "time", seeded)
    # The platform's own jitter (retry delays, counter shards) from the seed as well.
    jitter_state = random.getstate()
    random.seed(seed)
    try:
        _drive(fns, monkeypatch, rng, run)
    finally:
        random.setstate(jitter_state)
    return run


@dataclass(frozen=True)
class Snapshot:
    """What a seeded run leaves: its record, and every item of the table as DynamoDB holds it."""

    run: Run
    items: tuple[dict[str, Any], ...]


@functools.cache
def thousands() -> Snapshot:
    """The THOUSANDS run (seed 7), made once per test session: a minute and more of moto work
    that the reports' and the recount's tests all read. Call it outside any test's account
    (from a fixture scoped wider than `aws`): it makes the run in an account of its own.

    It is made on a thread of its own. On CPython 3.11 a thread's Python frames live in chunks
    of memory that are unmapped as soon as the stack returns below them; at the depth pytest
    sets up a fixture, the run's hottest calls cross such a boundary and map and unmap a chunk
    each time. Measured: a 4-hour run made 96,000 mmap/munmap pairs there against 3,800 on a
    fresh thread, and the THOUSANDS run took 80-90 s instead of 67-70 s. A fresh thread starts
    the run at the bottom of its own stack; the run itself is the same, request for request."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seeded-run") as worker:
        return worker.submit(_made, THOUSANDS, 7).result()


def _made(scale: Scale, seed: int) -> Snapshot:
    with local_account() as (fns, monkeypatch):
        run = seeded_run(fns, monkeypatch, seed=seed, scale=scale)
        for queue in fns.queues.values():
            for url in (queue.url, queue.dlq_url):
                left = fns.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                # Only the table is carried over: nothing may be left on a queue.
                assert [left[k] for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                          "ApproximateNumberOfMessagesDelayed")] == ["0", "0", "0"], url
        pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=spec.TABLE.name)
        items = tuple(item for page in pages for item in page["Items"])
    return Snapshot(replace(run, clock={"value": run.end}), items)


def restore(fns, monkeypatch: pytest.MonkeyPatch, snapshot: Snapshot) -> Run:
    """The snapshot's items written into this test's (empty) table, and the reports' clock at
    the end of the run, so "today" and the default periods are the run's."""
    use_fast_paths(monkeypatch)
    dynamodb = boto3.client("dynamodb")
    items = snapshot.items
    for start in range(0, len(items), 25):
        batch = {spec.TABLE.name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while batch:
            batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    end = snapshot.run.end
    from sendline import http

    for function in CLOCKED:
        module = fns.module(function)
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", lambda: end)
    monkeypatch.setattr(http, "utcnow", lambda: end)
    runtime.reset()
    return replace(snapshot.run, clock={"value": end})


def _drive(fns, monkeypatch: pytest.MonkeyPatch, rng: random.Random, run: Run) -> None:
    now, scale = run.clock, run.scale
    real_send = SendQueue.send
    monkeypatch.setattr(SendQueue, "send", lambda self, requests, delay_s=0: real_send(self, requests, 0))
    records, queue = runtime.records(), runtime.send_queue()

    # The account: billing rates, carrier fees, validation for campaigns.
    _ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={
        "validation": {"enabled_for_campaigns": True, "min_score": 0, "cost_per_lookup": 0.004},
        "billing": {"rate_per_segment": 0.02, "carrier_fees_per_segment": {"T-Mobile": 0.003, "AT&T": 0.002}},
        "auto_pause": {"error_rate_threshold_pct": 0}}))
    for b, (name, count, _, _) in enumerate(BRANDS):
        brand = _ok(fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
            "name": name, "call_number": f"888555012{b}"}))
        run.brands.append(brand)
        for n in range(count):
            number = f"+1212555{900 + 10 * b + n:04d}"
            _ok(fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body={
                "number": number, "brand_id": brand["brand_id"], "mps": 50}))
            run.numbers.append(number)
    _ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={
        "billing": {"brand_rates_per_segment": {run.brands[0]["brand_id"]: 0.025, run.brands[2]["brand_id"]: 0.03}}}))
    first_numbers = [sum(b[1] for b in BRANDS[:i]) for i in range(len(BRANDS))]
    for b, brand in enumerate(run.brands):
        flow = _ok(fns.http("POST", "/v1/flows", headers=OPERATOR, json_body={
            "name": f"Flow {b}", "from_number": run.numbers[first_numbers[b]], "call_number": "+18885550123",
            "initial_message": "Hi {first_name}, your quote is ready. Call {call_number}.",
            "drips": [{"delay_minutes": 90, "message": "{first_name}, still looking?"}]}))
        run.flows.append(flow["flow_id"])

    used: set[str] = set()
    carriers: dict[str, str] = {}
    lookups = FakeLookups(carriers)
    for c, (brand, (_, _, weights, share)) in enumerate(zip(run.brands, BRANDS)):
        phones = [_phone(rng, used) for _ in range(round(scale.contacts * share))]
        for phone in phones:
            carriers[phone] = rng.choice(CARRIERS)
        listed = _ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": f"List {c}"}))
        csv_text = "First Name,Phone\n" + "".join(f"Pat{i},{p}\n" for i, p in enumerate(phones))
        _ok(fns.http("POST", f"/v1/contact-lists/{listed['list_id']}/imports?filename=l.csv",
                     headers={**OPERATOR, "content-type": "text/csv"}, body=csv_text))
        assert fns.drain_imports() == 1
        creatives = [{"body": body, "weight": weight} for body, weight in zip(CREATIVE_BODIES, weights)]
        # A campaign spreads its contacts over hours (90 an hour), and each starts a day apart.
        made = _ok(fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body={
            "name": f"Campaign {c}", "brand_id": brand["brand_id"], "list_id": listed["list_id"],
            "rate_per_second": 1.5, "send_window": {"start": "00:00", "end": "24:00"}, "creatives": creatives}))
        launch_at = START + timedelta(hours=1 + c * scale.hours // len(BRANDS))
        _ok(fns.http("POST", f"/v1/campaigns/{made['campaign_id']}/launch", headers=OPERATOR,
                     json_body={"start_at": launch_at.isoformat().replace("+00:00", "Z")}))
        run.campaigns.append(made["campaign_id"])

    carrier = FakeCarrier(rng)
    pending_receipts: list[tuple[datetime, dict[str, str]]] = []
    retry: list[SendRequest] = []
    quick_left = scale.quick_sends
    signer = RequestValidator(TWILIO_TOKEN)
    sends = fns.queues["sends"].url
    turn = {"offset": 0}

    def post(url: str, path: str, params: dict[str, str]) -> None:
        _ok(fns.http("POST", path, body=form(params), headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signer.compute_signature(url, params)}))

    sent_hours: dict[str, datetime] = {}  # sid -> the hour its text was sent in
    finished: set[str] = set()  # sids whose final status has been posted

    def post_receipt(params: dict[str, str], *, again: bool = False) -> None:
        sid = params["MessageSid"]
        if again:
            run.receipts_repeated += 1
        elif params["MessageStatus"] == "sent":
            run.receipts_out_of_order += sid in finished
        else:
            finished.add(sid)
        if not again and now["value"] >= sent_hours[sid] + timedelta(hours=1):
            run.receipts_late += 1
        post(STATUS_URL, "/webhooks/twilio/status", params)
        run.receipts_posted += 1

    def drain_worker(moment: datetime) -> None:
        """What the queue holds, to the send worker's service, a second apart."""
        nonlocal retry
        requests = list(retry)
        retry = []
        while True:
            got = fns.sqs.receive_message(QueueUrl=sends, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            requests += [SendRequest.from_body(m["Body"]) for m in got]
            fns.sqs.delete_message_batch(QueueUrl=sends, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        for request in requests:
            at = moment + timedelta(seconds=turn["offset"])
            turn["offset"] += 1
            accepted_before = carrier.sids
            try:
                result = send_message(records, carrier, request, at, lookups=lookups, wait=lambda s: None,
                                      monotonic=lambda: 0.0)
            except RetryLater:
                retry.append(request)
                continue
            if result.value in ("sent", "failed", "unknown"):
                run.texts_attempted += 1
            if carrier.sids > accepted_before:
                sid = f"SM{carrier.sids:032x}"
                sent_hours[sid] = moment
                _plan_receipts(rng, sid, carrier.accepted[sid], at, pending_receipts)

    for hour in range(scale.hours):
        moment = START + timedelta(hours=hour)
        now["value"] = moment
        turn["offset"] = 0
        for _ in range(scale.leads_per_hour):
            _ok(fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={
                "flow_id": rng.choice(run.flows), "phone": _phone(rng, used),
                "first_name": rng.choice(["Ann", "Bob", "Cy"])}))
        if quick_left and rng.random() < 2 * scale.quick_sends / scale.hours:
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
            post_receipt(params)
            if rng.random() < 0.12:
                post_receipt(params, again=True)
        # Some recipients answer.
        texted = sorted(carrier.accepted.items())
        for sid, (to, from_number) in rng.sample(texted, k=min(len(texted), scale.replies_per_hour)):
            now["value"] = moment + timedelta(minutes=30)
            inbound = {"MessageSid": f"SM{rng.getrandbits(128):032x}", "AccountSid": "AC" + "1" * 32, "From": to,
                       "To": from_number, "Body": rng.choice(REPLIES), "NumMedia": "0", "SmsStatus": "received"}
            post(INBOUND_URL, "/webhooks/twilio/inbound", inbound)
            run.inbound_posted += 1
            if rng.random() < 0.1:  # the carrier retries the webhook
                post(INBOUND_URL, "/webhooks/twilio/inbound", inbound)
                run.inbound_posted += 1
                run.inbound_repeated += 1
        run.end = moment + timedelta(hours=1)
    # The last receipts, in any order.
    rng.shuffle(pending_receipts)
    for at, params in pending_receipts:
        now["value"] = max(at, run.end)
        post_receipt(params)
    now["value"] = run.end


def _plan_receipts(rng: random.Random, sid: str, to_from: tuple[str, str], sent_at: datetime,
                   pending: list[tuple[datetime, dict[str, str]]]) -> None:
    """The receipts the carrier will post: a `sent` for some texts, then the final status for
    most, late by a minute to two hours (so some come before `sent`, and after the hour)."""
    to, from_number = to_from
    base = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "1" * 32, "To": to, "From": from_number,
            "ApiVersion": "2010-04-01"}
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
    if rng.random() < 0.35:
        pending.append((sent_at + timedelta(seconds=2), {**base, "MessageStatus": "sent", "SmsStatus": "sent"}))
    if final:
        pending.append((sent_at + late, {**base, **final, "SmsStatus": final["MessageStatus"]}))
