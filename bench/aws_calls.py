"""Benchmark 1: AWS requests per message, by service and operation, and what they cost.

N leads go through the real handlers in-process against moto: `lead_submit` (phase submit), the
`send_worker` draining the sends queue with the carrier answered by respx (send), signed `sent`
and `delivered` status callbacks to `dlr_webhook` (receipt), the drip scheduler's tick with the
clock three minutes ahead (drip tick), then the drips sent (drip send) and their receipts (drip
receipt). The flow and the integrator key are created first (setup, not counted per message).

Every call the handlers' boto3 clients make is counted by `bench.meter.Meter`. The SQS calls a
Lambda event source mapping makes (ReceiveMessage, DeleteMessageBatch) are made here by the
harness, the way the mapping makes them, and counted apart as `event_source`. moto answers in
microseconds: the wall times recorded are not AWS latencies.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bench import FUNCTIONS_DIR
from bench.capacity import IndexKey
from bench.meter import Meter, by_operation, phase_totals, transaction_sizes
from bench.pricing import PRICES_DATE, REGION, cost_per_thousand, lambda_compute_per_thousand
from bench.stats import per

PHASES = ("submit", "send", "receipt", "drip tick", "drip send", "drip receipt")
API_URL = "https://api.sendline.test"
API_HOST = "api.sendline.test"
STATUS_URL = f"{API_URL}/webhooks/twilio/status"
OPERATOR_TOKEN = "operator-token-for-bench"
API_KEY = "sk_bench_integrator_key"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "f" * 32
TWILIO_BASE = "https://twilio.bench"
MESSAGES_URL = f"{TWILIO_BASE}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
AREA_CODES = ("212", "312", "415", "602", "907", "808", "305", "206")

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION, "TABLE_NAME": "sendline", "PUBLIC_API_URL": API_URL,
    "OPERATOR_TOKEN_SHA256": hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest(),
    "TWILIO_API_BASE": TWILIO_BASE, "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "POWERTOOLS_SERVICE_NAME": "sendline", "POWERTOOLS_METRICS_NAMESPACE": "Sendline",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
}


def fictional_phone(n: int) -> str:
    """+1 NXX 555-01xx: numbers reserved for fiction, 100 per area code."""
    return f"+1{AREA_CODES[n // 100 % len(AREA_CODES)]}55501{n % 100:02d}"


@contextmanager
def patched_environment(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *remove)}
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Harness:
    """Invokes each function's handler with AWS-shaped events, as API Gateway, the SQS event
    source mapping and EventBridge would, and counts the invocations by phase."""

    queue_url: str
    queue_arn: str
    sqs: Any  # the event source mapping's own client
    meter: Meter
    invocations: dict[str, dict[str, int]] = field(default_factory=dict)
    http_requests: dict[str, int] = field(default_factory=dict)
    _modules: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from devstack import apigw
        from infra import spec

        self._spec = spec
        self._apigw = apigw
        self._routes = apigw.RouteTable(apigw.bindings_from_spec({f.name: f.name for f in spec.FUNCTIONS}))

    def _invoke(self, name: str, event: dict[str, Any]) -> Any:
        from devstack.lambda_runtime import LambdaContext, load_handler_copy

        if name not in self._modules:
            self._modules[name] = load_handler_copy(FUNCTIONS_DIR / name / "handler.py", f"bench_fn_{name}")[1]
        function = self._spec.function(name)
        context = LambdaContext(function_name=f"sendline-{name}", memory_limit_in_mb=function.memory_mb,
                                timeout_s=function.timeout_s, log_stream_name="bench")
        counts = self.invocations.setdefault(self.meter.phase, {})
        counts[name] = counts.get(name, 0) + 1
        return self._modules[name](event, context)

    def http(self, method: str, target: str, *, json_body: Any = None, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        all_headers = {"host": API_HOST, "user-agent": "sendline-bench", **(headers or {})}
        raw = b""
        if json_body is not None:
            raw = json.dumps(json_body).encode()
            all_headers["content-type"] = "application/json"
        elif form is not None:
            raw = urlencode(form).encode()
            all_headers["content-type"] = "application/x-www-form-urlencoded"
        request = self._apigw.HttpRequest(method=method, target=target, headers=list(all_headers.items()),
                                          body=raw, source_ip="203.0.113.9", server_port=443)
        match = self._routes.match(method, request.raw_path)
        if match is None:
            raise LookupError(f"no route for {method} {target}")
        event = self._apigw.build_event(request, match)
        event["headers"]["x-forwarded-proto"] = "https"
        self.http_requests[self.meter.phase] = self.http_requests.get(self.meter.phase, 0) + 1
        result = self._invoke(match.target, event)
        body = result.get("body") or ""
        try:
            return result["statusCode"], json.loads(body)
        except ValueError:
            return result["statusCode"], body

    def drain_sends(self, max_rounds: int = 1000) -> int:
        """Hands the queue to the send worker ten messages at a time until it is empty."""
        from devstack.pollers import sqs_event

        handled = 0
        for _ in range(max_rounds):
            received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                break
            response = self._invoke("send_worker", sqs_event(messages, self.queue_arn))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
            handled += len(messages)
        return handled

    def status_callback(self, sid: str, status: str, to: str, from_: str) -> int:
        from twilio.request_validator import RequestValidator

        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": TWILIO_SID, "To": to, "From": from_, "ApiVersion": "2010-04-01"}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(STATUS_URL, params)
        status_code, _ = self.http("POST", "/webhooks/twilio/status", form=params,
                                   headers={"x-twilio-signature": signature})
        return status_code


def flow_body(drip_delays_min: tuple[int, ...]) -> dict[str, Any]:
    return {
        "name": "Bench flow", "from_number": "+12125550100", "call_number": "+18885550123",
        "initial_message": "Hi {first_name}, your quote is ready. Call {call_number}. Reply STOP to opt out.",
        "drips": [{"delay_minutes": d, "message": f"{{first_name}}, still looking? ({d}) {{call_number}}"}
                  for d in drip_delays_min],
    }


def post_receipts(harness: Harness, sends: list[tuple[str, str, str]]) -> None:
    """A `sent` then a `delivered` status callback for each (sid, to, from) sent."""
    for sid, to, from_ in sends:
        for status in ("sent", "delivered"):
            if harness.status_callback(sid, status, to, from_) != 200:
                raise RuntimeError(f"the {status} callback for {sid} was refused")


@contextmanager
def _phase(meter: Meter, wall: dict[str, float], name: str) -> Iterator[None]:
    """Attributes the calls made inside the block to phase `name` and adds up its wall time."""
    meter.phase = name
    started = time.perf_counter()
    try:
        yield
    finally:
        wall[name] = wall.get(name, 0.0) + time.perf_counter() - started


def _moto_lookup(table_name: str) -> Any:
    """Reads an item straight from moto's backend (no API call), in DynamoDB's wire form."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    def lookup(pk: str, sk: str) -> dict[str, Any] | None:
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table_name)
        item = table.get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
        return item.to_json()["Attributes"] if item else None

    return lookup


def run(leads: int = 50, drip_delays_min: tuple[int, ...] = (1, 2), tick_ahead_min: int = 3) -> dict[str, Any]:
    """Runs the leads through every phase and returns the counts, units and cost."""
    import boto3
    import httpx
    import respx
    from moto import mock_aws

    from devstack.resources import bucket_name, create_resources, tune_moto
    from infra import spec
    from sendline import runtime
    from sendline.adapters import aws
    from sendline.domain.clock import utcnow
    from sendline.services.api_keys import register_api_key
    from sendline.services.drips import run_due_messages

    started = time.perf_counter()
    wall: dict[str, float] = {}
    sids = (f"SM{n:032x}" for n in itertools.count(1))
    carrier_log: list[tuple[str, str, str]] = []  # (sid, to, from) per accepted send

    def carrier(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        sid = next(sids)
        carrier_log.append((sid, form["To"], form["From"]))
        return httpx.Response(201, json={"sid": sid, "status": "queued", "num_segments": "1", "price": None,
                                         "to": form["To"], "from": form["From"]})

    # moto copies every table a transaction names, so each TransactWriteItems costs O(table size);
    # the local stack's patch backs up only the touched items (safe here: one thread).
    tune_moto()
    # The operator API also serves DNC imports, which go through the uploads bucket.
    environment = {**ENVIRONMENT, "TABLE_NAME": spec.TABLE.name, "UPLOADS_BUCKET": bucket_name()}
    with patched_environment(environment, remove=("AWS_ENDPOINT_URL", "AWS_PROFILE")), mock_aws():
        queues = create_resources(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3"))
        sends = queues["sends"]
        os.environ[spec.queue_url_env("sends")] = sends.url
        runtime.reset()
        try:
            meter = Meter(table_key=(spec.TABLE.pk, spec.TABLE.sk),
                          indexes=[IndexKey(i.name, i.pk, i.sk, i.projection) for i in spec.TABLE.indexes],
                          lookup=_moto_lookup(spec.TABLE.name))
            meter.attach(aws.dynamodb(), "app")
            meter.attach(aws.sqs(), "app")
            poller = boto3.client("sqs")
            meter.attach(poller, "event_source")
            harness = Harness(sends.url, sends.arn, poller, meter)

            def timed(name: str) -> Any:
                return _phase(meter, wall, name)

            with timed("setup"):
                register_api_key(API_KEY, "bench")
                status, body = harness.http("POST", "/v1/flows", json_body=flow_body(drip_delays_min),
                                            headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
                if status != 201:
                    raise RuntimeError(f"creating the flow failed: {status} {body}")
                flow_id = body["flow_id"]

            with timed("submit"):
                for n in range(leads):
                    status, body = harness.http("POST", "/v1/leads", headers={"x-api-key": API_KEY}, json_body={
                        "flow_id": flow_id, "phone": fictional_phone(n), "first_name": f"Lead{n}",
                        "last_name": "Bench", "source": "bench", "vehicle": "Civic"})
                    if status != 200 or not body.get("sent"):
                        raise RuntimeError(f"lead {n} was not accepted: {status} {body}")

            with respx.mock(assert_all_called=False) as mock:
                mock.post(MESSAGES_URL).mock(side_effect=carrier)
                with timed("send"):
                    harness.drain_sends()
                first_sends = list(carrier_log)
                with timed("receipt"):
                    post_receipts(harness, first_sends)
                # A tick queues one due step per lead (a lead's drips never go out bunched), so
                # the drips take a tick each.
                queued = 0
                for _ in range(len(drip_delays_min) + 1):
                    with timed("drip tick"):
                        report = run_due_messages(runtime.records(), runtime.send_queue(),
                                                  utcnow() + timedelta(minutes=tick_ahead_min))
                        ticks = harness.invocations.setdefault("drip tick", {})
                        ticks["drip_scheduler"] = ticks.get("drip_scheduler", 0) + 1
                    if not report.queued:
                        break
                    queued += report.queued
                    with timed("drip send"):
                        harness.drain_sends()
                drip_sends = carrier_log[len(first_sends):]
                with timed("drip receipt"):
                    post_receipts(harness, drip_sends)
        finally:
            runtime.reset()

    messages = len(carrier_log)
    expected = leads * (1 + len(drip_delays_min))
    if messages != expected or queued != leads * len(drip_delays_min):
        raise RuntimeError(f"expected {expected} messages sent, got {messages} (ticks queued {queued})")
    return summarise(meter, harness, leads=leads, messages=messages, drips=len(drip_delays_min),
                     wall=wall, elapsed=time.perf_counter() - started)


def summarise(meter: Meter, harness: Harness, *, leads: int, messages: int, drips: int,
              wall: dict[str, float], elapsed: float) -> dict[str, Any]:
    from infra import spec

    calls = meter.calls
    operations = by_operation(calls, PHASES)
    phases = {}
    for name in PHASES:
        totals = phase_totals(calls, name)
        totals["lambda_invocations"] = sum(harness.invocations.get(name, {}).values())
        totals["http_api_requests"] = harness.http_requests.get(name, 0)
        totals["wall_s_moto"] = round(wall.get(name, 0.0), 3)
        phases[name] = totals

    def total(key: str) -> float:
        return sum(p[key] for p in phases.values())

    per_message = {
        "dynamodb_calls": per(total("dynamodb_calls"), messages),
        "sqs_calls_app": per(total("sqs_calls_app"), messages),
        "sqs_calls_event_source": per(total("sqs_calls_event_source"), messages),
        "transact_items": per(total("transact_items"), messages),
        "wru_transact": per(total("wru_transact"), messages),
        "wru_table": per(total("wru_table"), messages),
        "wru_index": per(total("wru_index"), messages),
        "rru": per(total("rru"), messages),
        "lambda_invocations": per(total("lambda_invocations"), messages),
        "http_api_requests": per(total("http_api_requests"), messages),
    }
    cost = cost_per_thousand({
        "wru": per_message["wru_table"] + per_message["wru_index"],
        "rru": per_message["rru"],
        "sqs_requests": per_message["sqs_calls_app"] + per_message["sqs_calls_event_source"],
        "lambda_requests": per_message["lambda_invocations"],
        "http_api_requests": per_message["http_api_requests"],
    })
    # Duration is not measured here (moto is not AWS); this is what each 100 ms billed adds.
    memory = {f.name: f.memory_mb for f in spec.FUNCTIONS}
    compute_100ms = sum(
        lambda_compute_per_thousand(
            per(sum(harness.invocations.get(phase, {}).get(name, 0) for phase in PHASES), messages) or 0,
            memory[name], 100)
        for name in memory)
    index_by_name: dict[str, float] = {}
    for call in calls:
        if call.phase in PHASES:
            for index, units in call.wru_index.items():
                index_by_name[index] = index_by_name.get(index, 0) + units
    return {
        "leads": leads,
        "drips_per_lead": drips,
        "messages_sent": messages,
        "receipts_posted": 2 * messages,
        "operations": {label: {**counts, "per_lead": counts["total"] / leads,
                               "per_message": counts["total"] / messages}
                       for label, counts in operations.items()},
        "phases": phases,
        "per_message": per_message,
        "per_lead": {k: (v or 0) * messages / leads for k, v in per_message.items()},
        "wru_index_by_index_per_message": {k: v / messages for k, v in sorted(index_by_name.items())},
        "transaction_sizes": transaction_sizes([c for c in calls if c.phase in PHASES]),
        "largest_item_bytes": meter.largest_item,
        "invocations_by_phase": harness.invocations,
        "cost_per_1000_messages_usd": cost,
        "lambda_compute_per_100ms_billed_per_1000_messages_usd": compute_100ms,
        "prices_date": PRICES_DATE,
        "setup_calls": sum(1 for c in calls if c.phase == "setup"),
        "elapsed_s": round(elapsed, 2),
    }
