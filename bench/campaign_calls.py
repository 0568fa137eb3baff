"""AWS requests of the campaign path and of a contacts import, counted in-process against moto.

`campaign_run(contacts)` does for a bulk campaign what `bench.aws_calls` does for lead flows: the
real handlers, invoked with AWS-shaped events, against `moto.mock_aws`, every call of their boto3
clients (DynamoDB, SQS, S3) counted by `bench.meter.Meter`. Phases:

- setup: brand, sending numbers, contact list, campaign and launch through `campaign_api`
  (not counted per message);
- import: the CSV posted to `campaign_api` (stored in S3), then the upload's S3 notification
  to `contacts_import`;
- dispatch: two `campaign_dispatcher` ticks, the one that starts the campaign and releases every
  contact, and the one that completes it;
- send: the sends queue drained into `send_worker`, ten at a time; the carrier answered by respx;
- receipt: a signed `sent` and a signed `delivered` status callback per text to `dlr_webhook`.

The dispatcher gives each text a delay (its second in the coming minute); here the delays are
recorded and the texts let through at once, as the integration tests do: the requests are the same.
The campaign's rate and the numbers' MPS are set high enough that nothing waits for its second
(a text held back would be queued again: the count of such requeues is reported, and is 0).

`import_run(rows)` streams a generated contacts file (as `bench.import_memory` writes it: 2%
unusable phones, 1% repeats) through `contacts_import`: once with the meter, for the requests and
request units per contact, and once without it, for the rows per second (moto in-process: not
DynamoDB's speed).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aws_calls import (
    ENVIRONMENT,
    MESSAGES_URL,
    OPERATOR_TOKEN,
    Harness,
    _moto_lookup,
    _phase,
    patched_environment,
    post_receipts,
)
from bench.capacity import IndexKey
from bench.meter import Meter, by_operation, phase_totals, transaction_sizes
from bench.pricing import PRICES_DATE, cost_per_thousand, lambda_compute_per_thousand
from bench.stats import per

PHASES = ("import", "dispatch", "send", "receipt")
MESSAGE_PHASES = ("dispatch", "send", "receipt")
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
# S3 request classes (https://aws.amazon.com/s3/pricing/): the rest are GET-class.
S3_PUT_CLASS = frozenset({"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2",
                          "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})
RATE = 100.0  # texts a second: the whole list is released by one tick
NUMBER_MPS = 100.0


@dataclass
class CampaignHarness(Harness):
    """`bench.aws_calls.Harness` plus raw request bodies, the imports queue and ticks."""

    imports_url: str = ""
    imports_arn: str = ""

    def post_raw(self, target: str, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, Any]:
        import json

        all_headers = {"host": "api.sendline.test", "user-agent": "sendline-bench", "content-type": content_type,
                       **headers}
        request = self._apigw.HttpRequest(method="POST", target=target, headers=list(all_headers.items()),
                                          body=body, source_ip="203.0.113.9", server_port=443)
        match = self._routes.match("POST", request.raw_path)
        if match is None:
            raise LookupError(f"no route for POST {target}")
        event = self._apigw.build_event(request, match)
        event["headers"]["x-forwarded-proto"] = "https"
        self.http_requests[self.meter.phase] = self.http_requests.get(self.meter.phase, 0) + 1
        result = self._invoke(match.target, event)
        try:
            return result["statusCode"], json.loads(result.get("body") or "")
        except ValueError:
            return result["statusCode"], result.get("body")

    def drain_imports(self) -> int:
        """Hands the imports queue to `contacts_import` one message at a time (batch size 1)."""
        from devstack.pollers import sqs_event

        handled = 0
        while True:
            received = self.sqs.receive_message(QueueUrl=self.imports_url, MaxNumberOfMessages=1,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                return handled
            response = self._invoke("contacts_import", sqs_event(messages, self.imports_arn))
            if response.get("batchItemFailures"):
                raise RuntimeError(f"the import failed: {response}")
            self.sqs.delete_message_batch(QueueUrl=self.imports_url, Entries=[
                {"Id": "0", "ReceiptHandle": messages[0]["ReceiptHandle"]}])
            handled += 1

    def tick(self, name: str) -> Any:
        event = {"version": "0", "id": "bench-tick", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-12-03T00:00:00Z", "region": "us-east-1",
                 "resources": [], "detail": {}}
        return self._invoke(name, event)

    def api(self, method: str, target: str, body: Any = None, expected: int = 200) -> Any:
        status, answer = self.http(method, target, json_body=body, headers=OPERATOR)
        if status != expected:
            raise RuntimeError(f"{method} {target}: {status} {answer}")
        return answer


@contextmanager
def moto_functions(metered: bool = True) -> Iterator[tuple[CampaignHarness, Meter]]:
    """moto with the table, queues and uploads bucket; a harness whose handlers' clients are
    metered (with `metered=False` the meter is attached to nothing)."""
    import boto3
    from moto import mock_aws

    from devstack.resources import bucket_name, create_resources, tune_moto
    from infra import spec
    from sendline import runtime
    from sendline.adapters import aws

    tune_moto()
    environment = {**ENVIRONMENT, "TABLE_NAME": spec.TABLE.name, "UPLOADS_BUCKET": bucket_name()}
    queue_names = [spec.queue_url_env(q.name) for q in spec.QUEUES]
    with patched_environment(environment, remove=("AWS_ENDPOINT_URL", "AWS_PROFILE", *queue_names)), mock_aws():
        queues = create_resources(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3"))
        for name, queue in queues.items():
            os.environ[spec.queue_url_env(name)] = queue.url
        runtime.reset()
        try:
            meter = Meter(table_key=(spec.TABLE.pk, spec.TABLE.sk),
                          indexes=[IndexKey(i.name, i.pk, i.sk, i.projection) for i in spec.TABLE.indexes],
                          lookup=_moto_lookup(spec.TABLE.name))
            poller = boto3.client("sqs")
            if metered:
                for client in (aws.dynamodb(), aws.sqs(), aws.s3()):
                    meter.attach(client, "app")
                meter.attach(poller, "event_source")
            sends, imports = queues["sends"], queues["imports"]
            harness = CampaignHarness(sends.url, sends.arn, poller, meter, imports_url=imports.url,
                                      imports_arn=imports.arn)
            harness.drain_imports()  # S3's test event, sent when the notification was set up
            yield harness, meter
        finally:
            runtime.reset()


@contextmanager
def _sends_without_delay(asked: list[int]) -> Iterator[None]:
    """SQS would hold each campaign text for its second of the minute: record the delays asked
    for and let the texts through at once (the same requests either way)."""
    from sendline.adapters.queue import SendQueue

    real_send = SendQueue.send

    def send_now(self: Any, requests: Any, delay_s: Any = 0) -> Any:
        asked.extend([delay_s] * len(requests) if isinstance(delay_s, int) else list(delay_s))
        return real_send(self, requests, 0)

    SendQueue.send = send_now  # type: ignore[method-assign]
    try:
        yield
    finally:
        SendQueue.send = real_send  # type: ignore[method-assign]


def campaign_csv(contacts: int) -> bytes:
    from bench.campaign import contacts_csv

    return contacts_csv(contacts).encode()


def campaign_run(contacts: int = 300, numbers: int = 4) -> dict[str, Any]:
    import httpx
    import respx

    from bench.campaign import CREATIVE, sender_numbers

    started = time.perf_counter()
    wall: dict[str, float] = {}
    sids = (f"SM{n:032x}" for n in itertools.count(1))
    carrier_log: list[tuple[str, str, str]] = []
    delays: list[int] = []

    def carrier(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        sid = next(sids)
        carrier_log.append((sid, form["To"], form["From"]))
        return httpx.Response(201, json={"sid": sid, "status": "queued", "num_segments": "1", "price": "-0.00790",
                                         "to": form["To"], "from": form["From"]})

    with moto_functions() as (harness, meter), _sends_without_delay(delays):
        def timed(name: str) -> Any:
            return _phase(meter, wall, name)

        with timed("setup"):
            brand = harness.api("POST", "/v1/brands", {"name": "Bench brand", "call_number": "8885550123"}, 201)
            for number in sender_numbers(numbers):
                harness.api("POST", "/v1/numbers", {"number": number, "brand_id": brand["brand_id"],
                                                    "mps": NUMBER_MPS}, 201)
            contact_list = harness.api("POST", "/v1/contact-lists", {"name": "Bench list"}, 201)
        with timed("import"):
            status, upload = harness.post_raw(f"/v1/contact-lists/{contact_list['list_id']}/imports?filename=b.csv",
                                              campaign_csv(contacts), "text/csv", OPERATOR)
            if status != 202:
                raise RuntimeError(f"the upload was refused: {status} {upload}")
            if harness.drain_imports() != 1:
                raise RuntimeError("the upload's notification did not arrive")
        with timed("setup"):
            report = harness.api("GET", f"/v1/imports/{upload['import_id']}")
            if report["status"] != "completed" or report["new_contacts"] != contacts:
                raise RuntimeError(f"the import went wrong: {report}")
            campaign = harness.api("POST", "/v1/campaigns", {
                "name": "Bench", "brand_id": brand["brand_id"], "list_id": contact_list["list_id"],
                "rate_per_second": RATE, "send_window": {"start": "00:00", "end": "24:00"},
                "creatives": [{"body": CREATIVE, "weight": 1}]}, 201)
            campaign_id = campaign["campaign_id"]
            harness.api("POST", f"/v1/campaigns/{campaign_id}/launch", {"start_at": "2020-01-01T00:00:00Z"})
        with respx.mock(assert_all_called=False) as mock:
            mock.post(MESSAGES_URL).mock(side_effect=carrier)
            with timed("dispatch"):
                first_tick = harness.tick("campaign_dispatcher")
            with timed("send"):
                harness.drain_sends()
            with timed("receipt"):
                post_receipts(harness, list(carrier_log))
            with timed("dispatch"):
                last_tick = harness.tick("campaign_dispatcher")
        with timed("setup"):
            final = harness.api("GET", f"/v1/campaigns/{campaign_id}")

    messages = len(carrier_log)
    recipients = Counter(to for _, to, _ in carrier_log)
    if messages != contacts or len(recipients) != contacts or final["status"] != "completed":
        raise RuntimeError(f"expected {contacts} texts and a completed campaign; got {messages} texts to "
                           f"{len(recipients)} recipients, status {final['status']}")
    if first_tick["released"].get(campaign_id) != contacts or last_tick["completed"] != [campaign_id]:
        raise RuntimeError(f"unexpected ticks: {first_tick} / {last_tick}")
    return summarise_campaign(meter, harness, contacts=contacts, messages=messages, numbers=numbers, wall=wall,
                              delays=delays, elapsed=time.perf_counter() - started)


def _s3_counts(calls: list[Any], phases: tuple[str, ...]) -> tuple[int, int]:
    selected = [c for c in calls if c.service == "s3" and c.phase in phases]
    put = sum(1 for c in selected if c.operation in S3_PUT_CLASS)
    return put, len(selected) - put


def summarise_campaign(meter: Meter, harness: CampaignHarness, *, contacts: int, messages: int, numbers: int,
                       wall: dict[str, float], delays: list[int], elapsed: float) -> dict[str, Any]:
    from infra import spec

    calls = meter.calls
    phases: dict[str, dict[str, Any]] = {}
    for name in PHASES:
        totals = phase_totals(calls, name)
        put, get = _s3_counts(calls, (name,))
        totals.update(s3_put_calls=put, s3_get_calls=get,
                      lambda_invocations=sum(harness.invocations.get(name, {}).values()),
                      http_api_requests=harness.http_requests.get(name, 0),
                      wall_s_moto=round(wall.get(name, 0.0), 3))
        phases[name] = totals

    def over(names: tuple[str, ...], key: str, count: int) -> float:
        return (per(sum(phases[n][key] for n in names), count) or 0.0)

    keys = ("dynamodb_calls", "sqs_calls_app", "sqs_calls_event_source", "s3_put_calls", "s3_get_calls",
            "transact_items", "wru_table", "wru_index", "rru", "lambda_invocations", "http_api_requests")
    per_message = {k: over(MESSAGE_PHASES, k, messages) for k in keys}
    per_contact = {k: over(("import",), k, contacts) for k in keys}

    def cost(units: dict[str, float]) -> dict[str, float]:
        return cost_per_thousand({
            "wru": units["wru_table"] + units["wru_index"], "rru": units["rru"],
            "sqs_requests": units["sqs_calls_app"] + units["sqs_calls_event_source"],
            "lambda_requests": units["lambda_invocations"], "http_api_requests": units["http_api_requests"],
            "s3_put_requests": units["s3_put_calls"], "s3_get_requests": units["s3_get_calls"]})

    memory = {f.name: f.memory_mb for f in spec.FUNCTIONS}
    compute_100ms = sum(
        lambda_compute_per_thousand(
            per(sum(harness.invocations.get(p, {}).get(name, 0) for p in MESSAGE_PHASES), messages) or 0,
            memory[name], 100)
        for name in memory)
    index_by_name: dict[str, float] = {}
    for call in calls:
        if call.phase in MESSAGE_PHASES:
            for index, units in call.wru_index.items():
                index_by_name[index] = index_by_name.get(index, 0) + units
    operations = by_operation(calls, PHASES)
    return {
        "contacts": contacts,
        "messages_sent": messages,
        "receipts_posted": 2 * messages,
        "numbers": numbers,
        "rate_per_second": RATE,
        "number_mps": NUMBER_MPS,
        "operations": {label: {**counts, "per_message": sum(counts.get(p, 0) for p in MESSAGE_PHASES) / messages,
                               "per_contact_imported": counts.get("import", 0) / contacts}
                       for label, counts in operations.items()},
        "phases": phases,
        "per_message": per_message,
        "per_contact_imported": per_contact,
        "wru_index_by_index_per_message": {k: v / messages for k, v in sorted(index_by_name.items())},
        "transaction_sizes": transaction_sizes([c for c in calls if c.phase in PHASES]),
        "largest_item_bytes": meter.largest_item,
        "invocations_by_phase": harness.invocations,
        "paced_requeues": sum(1 for c in calls if c.phase == "send" and c.operation == "SendMessageBatch"
                              and c.source == "app"),
        "dispatch_delays_s": {"min": min(delays), "max": max(delays)} if delays else None,
        "cost_per_1000_messages_usd": cost(per_message),
        "cost_per_1000_contacts_imported_usd": cost(per_contact),
        "lambda_compute_per_100ms_billed_per_1000_messages_usd": compute_100ms,
        "prices_date": PRICES_DATE,
        "setup_calls": sum(1 for c in calls if c.phase == "setup"),
        "elapsed_s": round(elapsed, 2),
    }


# -- the import through its handler ----------------------------------------------------------------
def import_run(rows: int = 50_000) -> dict[str, Any]:
    """The generated file through `contacts_import`: requests per contact (metered run) and rows
    per second (a second run without the meter)."""
    from bench.import_memory import write_contacts_file

    with tempfile.TemporaryDirectory(prefix="sendline-import-handler-") as folder:
        path = Path(folder) / "contacts.csv"
        size = write_contacts_file(path, rows)
        metered = _import_once(path, metered=True)
        timed = _import_once(path, metered=False)
    meter_calls, report = metered["calls"], metered["report"]
    contacts = report["new_contacts"]
    totals = phase_totals(meter_calls, "import")
    put, get = _s3_counts(meter_calls, ("import",))
    operations = {label: counts["total"] for label, counts in by_operation(meter_calls, ("import",)).items()}
    return {
        "rows": rows,
        "file_mb": round(size / (1024 * 1024), 1),
        "outcome": {k: report.get(k) for k in ("rows_read", "accepted", "duplicates", "rejected", "new_contacts")},
        "seconds": round(timed["seconds"], 2),
        "rows_per_s": round(rows / timed["seconds"]),
        "seconds_metered": round(metered["seconds"], 2),
        "operations": operations,
        "per_contact": {
            "dynamodb_calls": per(totals["dynamodb_calls"], contacts),
            "items_written_in_batches": per(sum(c.batch_items for c in meter_calls if c.phase == "import"
                                                and c.operation == "BatchWriteItem"), contacts),
            "keys_read_in_batches": per(sum(c.batch_items for c in meter_calls if c.phase == "import"
                                            and c.operation == "BatchGetItem"), contacts),
            "wru": per(totals["wru_table"] + totals["wru_index"], contacts),
            "rru": per(totals["rru"], contacts),
            "s3_calls": per(put + get, contacts),
        },
        "totals": {**totals, "s3_put_calls": put, "s3_get_calls": get},
        "cost_per_1000_contacts_usd": cost_per_thousand({
            "wru": (totals["wru_table"] + totals["wru_index"]) / contacts, "rru": totals["rru"] / contacts,
            "sqs_requests": (totals["sqs_calls_app"] + totals["sqs_calls_event_source"]) / contacts,
            "lambda_requests": 1 / contacts, "s3_put_requests": put / contacts, "s3_get_requests": get / contacts}),
    }


def _import_once(path: Path, *, metered: bool) -> dict[str, Any]:
    with moto_functions(metered=metered) as (harness, meter):
        meter.phase = "setup"
        contact_list = harness.api("POST", "/v1/contact-lists", {"name": "Import bench"}, 201)
        started = harness.api("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports", None, 202)
        from sendline import runtime

        # What the operator's PUT to the presigned URL does: the object lands under the import's key.
        runtime.uploads().put(f"imports/{started['import_id']}/contacts.csv", path.read_bytes(), "text/csv")
        meter.phase = "import"
        clock = time.perf_counter()
        if harness.drain_imports() != 1:
            raise RuntimeError("the upload's notification did not arrive")
        seconds = time.perf_counter() - clock
        meter.phase = "setup"
        report = harness.api("GET", f"/v1/imports/{started['import_id']}")
    if report["status"] != "completed":
        raise RuntimeError(f"the import did not complete: {report}")
    return {"seconds": seconds, "report": report, "calls": list(meter.calls)}
