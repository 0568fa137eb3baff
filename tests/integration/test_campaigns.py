"""Bulk campaigns through the real handlers and moto: brands, numbers, templates, a CSV import,
launch, paced dispatch, pause and resume, cancel, auto-pause, quick send, legacy routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from sendline import runtime
from sendline.adapters.queue import SendQueue, SendRequest
from sendline.domain.pacing import choose_creative
from sendline.domain.phones import mask_phone
from sendline.services.auto_pause import check_auto_pause
from sendline.services.dispatch import dispatch_tick
from sendline.services.sending import SendResult, send_message
from tests.integration.conftest import INTEGRATOR, OPERATOR
from tests.integration.test_lead_flow import MESSAGES_URL

# 15:00 UTC is 10:00 in New York and 07:00 in Los Angeles: inside and outside 08:00-21:00.
MORNING = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
NOON = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # 13:00 New York, 10:00 Los Angeles

NEW_YORK = ["+12125550101", "+12125550102", "+12125550103", "+12125550104", "+12125550105", "+12125550106"]


@pytest.fixture(autouse=True)
def delays(monkeypatch) -> list[int]:
    """SQS would hold each campaign text for its second of the minute; the tests record the
    delays the dispatcher asked for and let the texts through at once."""
    asked: list[int] = []
    real_send = SendQueue.send

    def send_now(self, requests, delay_s=0):
        asked.extend([delay_s] * len(requests) if isinstance(delay_s, int) else list(delay_s))
        return real_send(self, requests, 0)

    monkeypatch.setattr(SendQueue, "send", send_now)
    return asked


def created(request: httpx.Request) -> httpx.Response:
    created.count += 1  # type: ignore[attr-defined]
    return httpx.Response(201, json={"sid": f"SM{created.count:032x}", "status": "queued", "num_segments": "1",
                                     "price": None})


created.count = 0  # type: ignore[attr-defined]


def ok(result, status=200):
    assert result.status == status, result.body
    return result.body


def brand_with_numbers(fns, numbers=("+12125550900", "+12125550901", "+12125550902"), mps=None):
    brand = ok(fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
        "name": "Acme Auto", "call_number": "8885550123", "help_text": "Acme Auto: call 888-555-0123"}), 201)
    for number in numbers:
        body = {"number": number, "brand_id": brand["brand_id"]}
        if mps:
            body["mps"] = mps
        ok(fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body=body), 201)
    return brand


def imported_list(fns, csv_text: str) -> dict:
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "December"}), 201)
    started = ok(fns.http("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports?filename=dec.csv",
                          headers={**OPERATOR, "content-type": "text/csv"}, body=csv_text), 202)
    assert started["status"] == "uploaded"
    assert fns.drain_imports() == 1
    report = ok(fns.http("GET", f"/v1/imports/{started['import_id']}", headers=OPERATOR))
    return {"list": contact_list, "import": report}


def contacts_csv(phones) -> str:
    return "First Name,Phone\n" + "".join(f"Pat{i},{p}\n" for i, p in enumerate(phones))


def campaign(fns, list_id, brand_id, **overrides) -> dict:
    body = {"name": "December promo", "brand_id": brand_id, "list_id": list_id, "rate_per_second": 2,
            "creatives": [{"body": "Hi {first_name}, call {call_number}", "weight": 1}]}
    body.update(overrides)
    return ok(fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body=body), 201)


def launched(fns, phones=NEW_YORK, **overrides) -> dict:
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(phones))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"], **overrides)
    launch(fns, made["campaign_id"])
    return made


def launch(fns, campaign_id):
    # The tests' clock is fixed in the past: start before it.
    return ok(fns.http("POST", f"/v1/campaigns/{campaign_id}/launch", headers=OPERATOR,
                       json_body={"start_at": "2026-12-03T00:00:00Z"}))


def worker(fns, now, carrier_route=None, step=timedelta(seconds=1)):
    """Deliver every queued text to the worker, the first as of `now` and each next one `step`
    later (the spacing the dispatcher's delays give them); returns the results."""
    records = runtime.records()
    results = []
    queue = fns.queues["sends"]
    while True:
        got = fns.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return results
        for message in got:
            request = SendRequest.from_body(message["Body"])
            results.append(send_message(records, runtime.twilio(), request, now, wait=lambda s: None,
                                        monotonic=lambda: 0.0))
            fns.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            now += step


def progress(fns, campaign_id):
    return ok(fns.http("GET", f"/v1/campaigns/{campaign_id}", headers=OPERATOR))


# -- brands, numbers, templates -----------------------------------------------------------------
def test_numbers_take_their_type_default_mps_and_are_listed_by_brand_and_pool(fns):
    brand = brand_with_numbers(fns, numbers=())
    for number, kind in (("+12125550900", "long_code"), ("+18885550100", "toll_free"), ("55123", "short_code")):
        ok(fns.http("POST", "/v1/numbers", headers=OPERATOR,
                    json_body={"number": number, "brand_id": brand["brand_id"], "type": kind}), 201)
    listed = ok(fns.http("GET", f"/v1/numbers?brand_id={brand['brand_id']}&pool=default", headers=OPERATOR))["numbers"]
    assert [(n["number"], n["type"], n["mps"], n["pool"]) for n in listed] == [
        ("+12125550900", "long_code", 1, "default"), ("+18885550100", "toll_free", 3, "default"),
        ("55123", "short_code", 100, "default")]
    again = fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body={"number": "(212) 555-0900",
                                                                          "brand_id": brand["brand_id"]})
    assert (again.status, again.body["errors"]) == (409, [{"field": "number", "reason": "this number is already registered"}])
    bad = fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body={"number": "555-CALL", "brand_id": brand["brand_id"]})
    assert (bad.status, bad.body["errors"]) == (422, [{"field": "number", "reason": "contains letters"}])
    rested = ok(fns.http("PATCH", "/v1/numbers/%2B12125550900", headers=OPERATOR, json_body={"status": "rested"}))
    assert rested["status"] == "rested"


def test_a_number_reads_the_same_from_create_get_list_and_update(fns):
    brand = brand_with_numbers(fns, numbers=())
    created_number = ok(fns.http("POST", "/v1/numbers", headers=OPERATOR,
                                 json_body={"number": "+12125550900", "brand_id": brand["brand_id"], "mps": 5}), 201)
    got = ok(fns.http("GET", "/v1/numbers/%2B12125550900", headers=OPERATOR))
    (listed,) = ok(fns.http("GET", "/v1/numbers", headers=OPERATOR))["numbers"]
    assert created_number == got == listed
    assert [type(n["mps"]) for n in (created_number, got, listed)] == [float, float, float]
    assert sorted(got) == ["brand_id", "created_at", "mps", "number", "pool", "status", "type", "updated_at"]
    changed = ok(fns.http("PATCH", "/v1/numbers/%2B12125550900", headers=OPERATOR, json_body={"mps": 2}))
    assert (changed["mps"], type(changed["mps"]), sorted(changed)) == (2.0, float, sorted(got))


def test_a_template_reads_the_same_from_create_get_list_and_update(fns):
    created_template = ok(fns.http("POST", "/v1/templates", headers=OPERATOR,
                                   json_body={"name": "Plain", "body": "Hi {first_name}"}), 201)
    got = ok(fns.http("GET", f"/v1/templates/{created_template['template_id']}", headers=OPERATOR))
    (listed,) = ok(fns.http("GET", "/v1/templates", headers=OPERATOR))["templates"]
    assert created_template == got == listed
    assert sorted(got) == ["archived", "body", "brand_id", "characters", "created_at", "encoding", "name", "segments",
                           "smart_encoded", "template_id", "ucs2_characters", "updated_at", "variables"]
    assert got["brand_id"] is None
    changed = ok(fns.http("PATCH", f"/v1/templates/{got['template_id']}", headers=OPERATOR,
                          json_body={"name": "Renamed", "body": None}))
    assert (changed["name"], changed["body"], sorted(changed)) == ("Renamed", "Hi {first_name}", sorted(got))


def test_template_listing_shows_characters_encoding_and_segments(fns):
    ok(fns.http("POST", "/v1/templates", headers=OPERATOR, json_body={"name": "Plain", "body": "Hi {first_name}"}), 201)
    ok(fns.http("POST", "/v1/templates", headers=OPERATOR,
                json_body={"name": "Curly", "body": "It’s time — call now 😀"}), 201)
    listed = {t["name"]: t for t in ok(fns.http("GET", "/v1/templates", headers=OPERATOR))["templates"]}
    assert (listed["Plain"]["characters"], listed["Plain"]["encoding"], listed["Plain"]["segments"]) == (15, "GSM-7", 1)
    curly = listed["Curly"]
    assert (curly["encoding"], curly["segments"], curly["ucs2_characters"]) == ("UCS-2", 1, ["—", "’", "😀"])
    assert curly["variables"] == [] and listed["Plain"]["variables"] == ["first_name"]


# -- import ---------------------------------------------------------------------------------------
def test_inline_csv_import_reports_every_row_and_keeps_one_contact_per_phone(fns):
    csv_text = ("Phone Number;fname;Lead Source\r\n"
                "(212) 555-0101;Ann;fb\r\n"
                "212.555.0101;Ann again;fb\r\n"
                "2.12555E+09;Bob;fb\r\n"
                "\r\n"
                "212-555-0102;Cy;\"tv; radio\"\r\n")
    result = imported_list(fns, csv_text)
    report = result["import"]
    assert {k: report[k] for k in ("status", "rows_read", "accepted", "duplicates", "rejected", "new_contacts",
                                   "delimiter")} == {
        "status": "completed", "rows_read": 4, "accepted": 2, "duplicates": 1, "rejected": 1, "new_contacts": 2,
        "delimiter": "semicolon"}
    lines = fns.http("GET", f"/v1/imports/{report['import_id']}/report.csv", headers=OPERATOR).body.splitlines()
    assert lines == ["line,outcome,reason,value", "3,duplicate,same phone as line 2,+1212***0101",
                     "4,rejected,digits lost to Excel scientific notation,2.12555E+09"]
    contacts = ok(fns.http("GET", f"/v1/contact-lists/{result['list']['list_id']}/contacts", headers=OPERATOR))
    assert [(c["phone"], c["first_name"], c["fields"]) for c in contacts["contacts"]] == [
        ("+12125550101", "Ann", {"lead_source": "fb"}), ("+12125550102", "Cy", {"lead_source": "tv; radio"})]
    assert ok(fns.http("GET", f"/v1/contact-lists/{result['list']['list_id']}", headers=OPERATOR))["contacts"] == 2


def test_contacts_page_on_from_the_next_phone_and_refuse_a_cursor_that_is_not_one(fns):
    result = imported_list(fns, contacts_csv(NEW_YORK[:3]))
    list_id = result["list"]["list_id"]
    first = ok(fns.http("GET", f"/v1/contact-lists/{list_id}/contacts?limit=2", headers=OPERATOR))
    assert ([c["phone"] for c in first["contacts"]], first["next"]) == (NEW_YORK[:2], NEW_YORK[1])
    rest = ok(fns.http("GET", f"/v1/contact-lists/{list_id}/contacts?limit=2&after=%2B12125550102", headers=OPERATOR))
    assert ([c["phone"] for c in rest["contacts"]], rest["next"]) == (NEW_YORK[2:3], None)
    unencoded = ok(fns.http("GET", f"/v1/contact-lists/{list_id}/contacts?after=+12125550102", headers=OPERATOR))
    assert [c["phone"] for c in unencoded["contacts"]] == NEW_YORK[2:3]
    garbage = fns.http("GET", f"/v1/contact-lists/{list_id}/contacts?after=garbage", headers=OPERATOR)
    assert (garbage.status, garbage.body["errors"]) == (
        422, [{"field": "after", "reason": "must be the phone number a page gave as next (contains letters)"}])


def test_an_import_never_clears_an_opt_out(fns):
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": "2125550101"}))
    result = imported_list(fns, "phone,opted_out,dnc\n2125550101,no,false\n")
    assert result["import"]["on_dnc"] == 1
    assert ok(fns.http("GET", "/v1/dnc/%2B12125550101", headers=OPERATOR))["dnc"] is True


def test_a_presigned_upload_starts_the_import(fns):
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "Big"}), 201)
    started = ok(fns.http("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports", headers=OPERATOR), 202)
    assert started["status"] == "awaiting_upload" and started["upload"]["method"] == "PUT"
    # What the client's PUT to the presigned URL does: the object lands under the import's key.
    runtime.uploads().put(f"imports/{started['import_id']}/contacts.csv", b"cell\n2125550101\n", "text/csv")
    assert fns.drain_imports() == 1
    report = ok(fns.http("GET", f"/v1/imports/{started['import_id']}", headers=OPERATOR))
    assert (report["status"], report["accepted"], report["columns"]) == ("completed", 1, {"cell": "phone"})


# -- campaign status machine ---------------------------------------------------------------------
def test_only_legal_transitions_are_allowed(fns):
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(NEW_YORK[:1]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"])
    cid = made["campaign_id"]
    assert made["status"] == "draft"
    for action in ("pause", "resume"):
        refused = fns.http("POST", f"/v1/campaigns/{cid}/{action}", headers=OPERATOR)
        assert refused.status == 409, action
    assert refused.body["errors"] == [{"field": "status", "reason": "the campaign is draft, not paused"}]
    assert ok(fns.http("POST", f"/v1/campaigns/{cid}/launch", headers=OPERATOR))["status"] == "scheduled"
    assert fns.http("POST", f"/v1/campaigns/{cid}/launch", headers=OPERATOR).status == 409
    assert fns.http("POST", f"/v1/campaigns/{cid}/pause", headers=OPERATOR).status == 409
    assert ok(fns.http("POST", f"/v1/campaigns/{cid}/cancel", headers=OPERATOR))["status"] == "cancelled"
    for action in ("launch", "pause", "resume", "cancel"):
        assert fns.http("POST", f"/v1/campaigns/{cid}/{action}", headers=OPERATOR).status == 409, action


def test_launch_needs_an_active_pool_and_contacts(fns):
    brand = brand_with_numbers(fns, numbers=())
    imported = imported_list(fns, contacts_csv(NEW_YORK[:1]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"])
    refused = fns.http("POST", f"/v1/campaigns/{made['campaign_id']}/launch", headers=OPERATOR)
    assert (refused.status, refused.body["errors"]) == (
        409, [{"field": "pool", "reason": "pool 'default' has no active sending numbers"}])


def test_campaign_input_errors_name_the_field(fns):
    brand = brand_with_numbers(fns)
    bad = fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body={
        "name": "x", "brand_id": brand["brand_id"], "list_id": "cl_nope", "creatives": [{"weight": 2}]})
    assert bad.status == 422
    assert bad.body["errors"] == [{"field": "creatives.0", "reason": "give either body or template_id"}]
    missing = fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body={
        "name": "x", "brand_id": brand["brand_id"], "list_id": "cl_nope", "creatives": [{"body": "hi"}]})
    assert (missing.status, missing.body["errors"]) == (404, [{"field": "list_id", "reason": "no contact list with this id"}])


@pytest.mark.parametrize(("change", "problem"), [
    ({"rate_per_second": True}, {"field": "rate_per_second", "reason": "must be a number"}),
    ({"rate_per_second": "3"}, {"field": "rate_per_second", "reason": "must be a number"}),
    ({"creatives": [{"body": "hi", "weight": "2"}]}, {"field": "creatives.0.weight", "reason": "must be an integer"}),
    ({"creatives": [{"body": "hi", "weight": True}]}, {"field": "creatives.0.weight", "reason": "must be an integer"}),
    ({"auto_pause": {"min_sends": "300"}}, {"field": "auto_pause.min_sends", "reason": "must be an integer"}),
    ({"validation": {"cost_per_lookup": True}}, {"field": "validation.cost_per_lookup", "reason": "must be a number"}),
])
def test_a_campaign_number_given_as_a_boolean_or_a_string_is_refused(fns, change, problem):
    brand = brand_with_numbers(fns, numbers=())
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "December"}), 201)
    body = {"name": "x", "brand_id": brand["brand_id"], "list_id": contact_list["list_id"],
            "creatives": [{"body": "hi"}], **change}
    refused = fns.http("POST", "/v1/campaigns", headers=OPERATOR, json_body=body)
    assert (refused.status, refused.body["errors"]) == (422, [problem])


def test_numbers_and_settings_refuse_booleans_and_strings_and_take_whole_numbers_as_rates(fns):
    brand = brand_with_numbers(fns, numbers=())
    for mps in (True, "5"):
        refused = fns.http("POST", "/v1/numbers", headers=OPERATOR,
                           json_body={"number": "+12125550900", "brand_id": brand["brand_id"], "mps": mps})
        assert (refused.status, refused.body["errors"]) == (422, [{"field": "mps", "reason": "must be a number"}])
    ok(fns.http("POST", "/v1/numbers", headers=OPERATOR, json_body={"number": "+12125550900", "brand_id": brand["brand_id"]}), 201)
    refused = fns.http("PATCH", "/v1/numbers/%2B12125550900", headers=OPERATOR, json_body={"mps": "2"})
    assert (refused.status, refused.body["errors"]) == (422, [{"field": "mps", "reason": "must be a number"}])
    for change, field, reason in (
            ({"prices": {"price_per_segment": "0.01"}}, "prices.price_per_segment", "must be a number"),
            ({"auto_pause": {"error_rate_threshold_pct": True}}, "auto_pause.error_rate_threshold_pct", "must be a number"),
            ({"billing": {"rate_per_segment": "0.02"}}, "billing.rate_per_segment", "must be a number"),
            ({"auto_dnc": {"failures_before_dnc": 2.5}}, "auto_dnc.failures_before_dnc", "must be an integer"),
            ({"auto_dnc": {"codes": ["30007"]}}, "auto_dnc.codes.0", "must be an integer")):
        refused = fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body=change)
        assert (refused.status, refused.body["errors"]) == (422, [{"field": field, "reason": reason}]), change
    changed = ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={"prices": {"price_per_segment": 1}}))
    assert (changed["prices"]["price_per_segment"], type(changed["prices"]["price_per_segment"])) == (1.0, float)
    assert ok(fns.http("GET", "/v1/settings", headers=OPERATOR))["prices"]["price_per_segment"] == 1.0


# -- placeholders ---------------------------------------------------------------------------------
UNCLOSED = '"{first name" has no closing "}"'
NOT_A_NAME = '"{1bad}" is not a variable: a name is letters, digits and _, and does not start with a digit'


def test_a_broken_placeholder_is_refused_wherever_a_body_is_saved(fns):
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "December"}), 201)
    saved = ok(fns.http("POST", "/v1/templates", headers=OPERATOR, json_body={"name": "Good", "body": "Hi {first_name}"}), 201)
    attempts = [
        ("POST", "/v1/templates", {"name": "Bad", "body": "Hi {first name"}, "body", UNCLOSED),
        ("PATCH", f"/v1/templates/{saved['template_id']}", {"body": "Hi {1bad}"}, "body", NOT_A_NAME),
        ("POST", "/v1/campaigns", {"name": "x", "brand_id": brand["brand_id"], "list_id": contact_list["list_id"],
                                   "creatives": [{"body": "ok"}, {"body": "Hi {first name"}]},
         "creatives.1.body", UNCLOSED),
        ("POST", "/v1/flows", {"name": "x", "from_number": "+12125550100", "initial_message": "Hi {1bad}"},
         "initial_message", NOT_A_NAME),
        ("POST", "/v1/flows", {"name": "x", "from_number": "+12125550100", "initial_message": "Hi",
                               "drips": [{"delay_minutes": 5, "message": "Hi {first name"}]},
         "drips.0.message", UNCLOSED),
        ("POST", "/v1/messages", {"to": "2125550142", "from": "+12125550900", "body": "Save 20%} today"},
         "body", '"}" at character 9 has no opening "{" (braces only mark variables, like {first_name})'),
    ]
    for method, target, body, field, reason in attempts:
        refused = fns.http(method, target, headers=OPERATOR, json_body=body)
        assert (refused.status, refused.body["errors"]) == (422, [{"field": field, "reason": reason}]), target
    assert ok(fns.http("GET", f"/v1/templates/{saved['template_id']}", headers=OPERATOR))["body"] == "Hi {first_name}"


# -- dispatch, pacing, filters --------------------------------------------------------------------
def test_dispatch_releases_at_the_rate_with_sticky_senders_and_records_creatives(fns, delays):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, creatives=[{"body": "A {first_name}", "weight": 1}, {"body": "B {first_name}", "weight": 1}],
                    rate_per_second=0.05)  # three a minute
    cid = made["campaign_id"]
    first = dispatch_tick(records, queue, NOON)
    assert (first.started, first.released) == ([cid], {cid: 3})
    assert delays == [0, 20, 40]  # spread over the minute, one every 20 seconds
    assert progress(fns, cid)["progress"]["not_yet_released"] == 3
    created.count = 0
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert worker(fns, NOON, step=timedelta(seconds=20)) == [SendResult.SENT] * 3
        second = dispatch_tick(records, queue, NOON + timedelta(minutes=1))
        assert second.released == {cid: 3}
        assert worker(fns, NOON + timedelta(minutes=1), step=timedelta(seconds=20)) == [SendResult.SENT] * 3
    sent = [parse_qs(call.request.content.decode()) for call in route.calls]
    senders = {s["To"][0]: s["From"][0] for s in sent}
    assert sorted(senders) == NEW_YORK
    # Each contact gets the creative its weighted draw gives it (the draw depends on the random
    # campaign id, so with six contacts one creative may take all six), and the text says so.
    weights = [("c1", 1), ("c2", 1)]
    expected = {phone: choose_creative(cid, phone, weights) for phone in NEW_YORK}
    assert {s["To"][0]: s["Body"][0].split()[0] for s in sent} == {
        phone: {"c1": "A", "c2": "B"}[creative] for phone, creative in expected.items()}
    messages = ok(fns.http("GET", f"/v1/campaigns/{cid}/messages", headers=OPERATOR))["messages"]
    assert {m["to_masked"]: m["creative_id"] for m in messages} == {
        mask_phone(phone): creative for phone, creative in expected.items()}
    assert all(m["status"] == "sent" for m in messages)
    third = dispatch_tick(records, queue, NOON + timedelta(minutes=2))
    assert third.completed == [cid]
    view = progress(fns, cid)
    assert view["status"] == "completed"
    assert {k: view["progress"][k] for k in ("total_contacts", "attempted", "sent", "percent")} == {
        "total_contacts": 6, "attempted": 6, "sent": 6, "percent": 100.0}
    # The same contacts in a second campaign hear from the same numbers.
    again = campaign(fns, made["list_id"], made["brand_id"], rate_per_second=1)
    launch(fns, again["campaign_id"])
    dispatch_tick(records, queue, NOON + timedelta(minutes=3))
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        worker(fns, NOON + timedelta(minutes=3))
    assert {parse_qs(c.request.content.decode())["To"][0]: parse_qs(c.request.content.decode())["From"][0]
            for c in route.calls} == senders


def test_dnc_contacts_are_skipped_with_the_reason_and_night_time_contacts_deferred(fns):
    records, queue = runtime.records(), runtime.send_queue()
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": NEW_YORK[0]}))
    made = launched(fns, phones=[NEW_YORK[0], NEW_YORK[1], "+13105550101"])  # the last is in Los Angeles
    cid = made["campaign_id"]
    report = dispatch_tick(records, queue, MORNING)
    assert (report.skipped, report.deferred, report.released) == (1, 1, {cid: 3})
    progress_now = progress(fns, cid)["progress"]
    assert progress_now["skipped_by_reason"] == {"dnc": 1}
    assert (progress_now["deferred"], progress_now["waiting"]) == (1, 1)
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert worker(fns, MORNING) == [SendResult.SENT]
        # 08:00 in Los Angeles is 16:00 UTC: the deferred text goes out then, not before.
        assert dispatch_tick(records, queue, MORNING + timedelta(minutes=30)).released == {}
        assert dispatch_tick(records, queue, MORNING + timedelta(hours=1)).released == {cid: 1}
        assert worker(fns, MORNING + timedelta(hours=1)) == [SendResult.SENT]
    assert sorted(parse_qs(c.request.content.decode())["To"][0] for c in route.calls) == [NEW_YORK[1], "+13105550101"]
    assert dispatch_tick(records, queue, MORNING + timedelta(hours=1, minutes=1)).completed == [cid]


def test_a_stop_after_release_still_wins_at_the_worker(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, phones=NEW_YORK[:2])
    dispatch_tick(records, queue, NOON)
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": NEW_YORK[0]}))
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert sorted(worker(fns, NOON)) == sorted([SendResult.SENT, SendResult.SKIPPED])
    assert [parse_qs(c.request.content.decode())["To"][0] for c in route.calls] == [NEW_YORK[1]]
    assert progress(fns, made["campaign_id"])["progress"]["skipped_by_reason"] == {"opted_out": 1}


def test_pause_stops_sends_at_the_worker_and_resume_sends_each_remaining_contact_once(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns)
    cid = made["campaign_id"]
    assert dispatch_tick(records, queue, NOON).released == {cid: 6}
    created.count = 0
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        # Two go out, then the operator pauses while four are still in the queue.
        queue_url = fns.queues["sends"].url
        got = fns.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2)["Messages"]
        for second, message in enumerate(got):
            at = NOON + timedelta(seconds=second)
            assert send_message(records, runtime.twilio(), SendRequest.from_body(message["Body"]), at) == SendResult.SENT
            fns.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        ok(fns.http("POST", f"/v1/campaigns/{cid}/pause", headers=OPERATOR))
        assert worker(fns, NOON + timedelta(seconds=5)) == [SendResult.PARKED] * 4
        assert route.call_count == 2
        paused = progress(fns, cid)
        assert (paused["status"], paused["pause_reason"], paused["progress"]["waiting"]) == ("paused", "operator", 4)
        assert dispatch_tick(records, queue, NOON + timedelta(minutes=1)).released == {}
        ok(fns.http("POST", f"/v1/campaigns/{cid}/resume", headers=OPERATOR))
        assert dispatch_tick(records, queue, NOON + timedelta(minutes=2)).released == {cid: 4}
        # SQS may deliver a text twice; the worker's claim sends it once.
        assert worker(fns, NOON + timedelta(minutes=2)) == [SendResult.SENT] * 4
    recipients = [parse_qs(c.request.content.decode())["To"][0] for c in route.calls]
    assert sorted(recipients) == NEW_YORK and len(set(recipients)) == 6
    assert dispatch_tick(records, queue, NOON + timedelta(minutes=3)).completed == [cid]


def test_cancel_stops_for_good_and_drains_what_was_waiting(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns)
    cid = made["campaign_id"]
    dispatch_tick(records, queue, NOON)
    ok(fns.http("POST", f"/v1/campaigns/{cid}/cancel", headers=OPERATOR))
    with respx.mock(assert_all_called=False) as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert worker(fns, NOON) == [SendResult.SKIPPED] * 6
    assert route.call_count == 0
    assert progress(fns, cid)["progress"]["cancelled"] == 6
    dispatch_tick(records, queue, NOON + timedelta(minutes=1))
    assert records.live_campaigns() == []


def test_the_worker_holds_each_number_to_its_mps(fns):
    records, queue = runtime.records(), runtime.send_queue()
    brand = brand_with_numbers(fns, numbers=("+12125550900",))  # one long code: 1 a second
    imported = imported_list(fns, contacts_csv(NEW_YORK[:3]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"], rate_per_second=5)
    launch(fns, made["campaign_id"])
    assert dispatch_tick(records, queue, NOON).released == {made["campaign_id"]: 3}
    got = fns.sqs.receive_message(QueueUrl=fns.queues["sends"].url, MaxNumberOfMessages=10)["Messages"]
    outcomes, waits = [], []
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        for message in got:  # all three arrive at the same moment
            try:
                outcomes.append(send_message(records, runtime.twilio(), SendRequest.from_body(message["Body"]), NOON,
                                             wait=waits.append, monotonic=lambda: 0.0))
            except Exception as exc:  # noqa: BLE001 - RetryLater is the expected answer
                outcomes.append(type(exc).__name__)
    # The first goes at once. The number's next turn is a second away while the campaign's is
    # free: the other two give the campaign's turn way (to other numbers' texts) and are queued again.
    assert outcomes == [SendResult.SENT, "RetryLater", "RetryLater"]
    assert waits == []
    noon_us = int(NOON.timestamp() * 1_000_000)
    # Turns are 2% wider than the rates: 1.02 s for the number, 204 ms for the campaign.
    assert records.store.get("PACE#NUM#+12125550900", "PACE")["next_at"] == noon_us + 1_020_000
    assert records.store.get(f"PACE#CAMP#{made['campaign_id']}", "PACE")["next_at"] == noon_us + 204_000
    # Back from the queue a second later, the second text waits the last 20 ms for the number's turn.
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(side_effect=created)
        again = send_message(records, runtime.twilio(), SendRequest.from_body(got[1]["Body"]),
                             NOON + timedelta(seconds=1), wait=waits.append, monotonic=lambda: 0.0)
    assert again == SendResult.SENT and waits == [0.02]
    assert route.call_count == 1
    texts = [records.get_message(SendRequest.from_body(m["Body"]).message_id) for m in got]
    assert [t.get("sent_at") for t in texts] == ["2026-12-03T18:00:00.000Z", "2026-12-03T18:00:01.020Z", None]
    assert records.store.get("PACE#NUM#+12125550900", "PACE")["next_at"] == noon_us + 2_040_000


def test_a_worker_that_reaches_its_turn_late_takes_the_next_free_turn(fns):
    # Given a campaign at 2 texts a second (turns 510 ms apart) from a fast number
    records, queue = runtime.records(), runtime.send_queue()
    brand = brand_with_numbers(fns, numbers=("+12125550900",), mps=50)
    imported = imported_list(fns, contacts_csv(NEW_YORK[:2]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"], rate_per_second=2)
    launch(fns, made["campaign_id"])
    dispatch_tick(records, queue, NOON)
    got = fns.sqs.receive_message(QueueUrl=fns.queues["sends"].url, MaxNumberOfMessages=10)["Messages"]
    clock = {"s": 0.0}
    waits = []

    def oversleeping(seconds):  # the worker's machine is busy: the first wait ends 300 ms late
        waits.append(round(seconds, 3))
        clock["s"] += seconds + (0.3 if len(waits) == 1 else 0.0)

    # When the second text's worker wakes 300 ms after its turn
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(side_effect=created)
        for message in got:
            assert send_message(records, runtime.twilio(), SendRequest.from_body(message["Body"]), NOON,
                                wait=oversleeping, monotonic=lambda: clock["s"]) == SendResult.SENT

    # Then it does not go at once, close behind where the next turn is: it takes that turn
    texts = sorted(records.get_message(SendRequest.from_body(m["Body"]).message_id)["sent_at"] for m in got)
    assert texts == ["2026-12-03T18:00:00.000Z", "2026-12-03T18:00:01.020Z"]
    assert waits == [0.51, 0.21]


# -- auto-pause ------------------------------------------------------------------------------------
def test_auto_pause_trips_at_the_threshold_and_not_before_min_sends(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns)
    cid = made["campaign_id"]
    dispatch_tick(records, queue, NOON)
    # 499 sends, 200 of them failed: 40% but too few sends to judge.
    records.count((f"CAMP#{cid}",), NOON, {"attempted": 499, "failed": 150, "undelivered": 50})
    assert check_auto_pause(records, NOON) == []
    assert progress(fns, cid)["status"] == "running"
    records.count((f"CAMP#{cid}",), NOON, {"attempted": 1})
    alerts = check_auto_pause(records, NOON)
    assert [a["campaign_id"] for a in alerts] == [cid]
    figures = {"sends": 500, "errors": 200, "failed": 150, "undelivered": 50, "error_rate_pct": 40.0,
               "threshold_pct": 20.0, "min_sends": 500}
    view = progress(fns, cid)
    assert (view["status"], view["pause_reason"], view["auto_pause_figures"]) == ("paused", "auto_pause", figures)
    listed = ok(fns.http("GET", "/v1/alerts", headers=OPERATOR))["alerts"]
    assert [(a["kind"], a["figures"]) for a in listed] == [("campaign_auto_paused", figures)]
    assert listed[0]["message"] == ("Campaign 'December promo' paused itself: 40.0% of 500 sends failed or went "
                                    "undelivered, above the 20% threshold.")


def test_auto_pause_off_when_the_threshold_is_zero(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, auto_pause={"min_sends": 10, "error_rate_threshold_pct": 0})
    dispatch_tick(records, queue, NOON)
    records.count((f"CAMP#{made['campaign_id']}",), NOON, {"attempted": 100, "failed": 100})
    assert check_auto_pause(records, NOON) == []


# -- preview, quick send, legacy routes ---------------------------------------------------------------
def test_preview_shows_each_creative_and_the_projection(fns):
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(NEW_YORK))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"], creatives=[
        {"body": "Hi {first_name}, call {call_number}", "weight": 3},
        {"body": "Hi {first_name} — it’s time", "weight": 1}])
    preview = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/preview", headers=OPERATOR))
    first, second = preview["creatives"]
    assert first["sample"] == "Hi Pat0, call (888) 555-0123\nReply STOP to opt out"
    assert (first["encoding"], first["segments"], first["share_pct"]) == ("GSM-7", 1, 75.0)
    assert (second["encoding"], second["ucs2_characters"]) == ("UCS-2", ["—", "’"])
    assert second["smart_encoded"] == {"body": "Hi Pat0 - it's time\nReply STOP to opt out", "encoding": "GSM-7",
                                       "segments": 1, "characters": 41}
    assert preview["projected"] == {"contacts": 6, "excluded_by_reason": {"dnc": 0}, "excluded_estimated": False,
                                    "messages": 6, "segments": 6, "cost": 0.05, "sending_cost": 0.05,
                                    "validation_cost": 0.0, "price_per_segment": 0.0079, "pool_numbers": 3,
                                    "effective_rate_per_second": 2.0, "duration_minutes": 0.1}


def test_preview_leaves_contacts_on_the_dnc_list_out_of_the_projection(fns):
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(NEW_YORK))
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phones": NEW_YORK[:2]}))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"],
                    creatives=[{"body": "Hi {first_name}, this text runs past one segment: " + "x" * 120}])
    preview = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/preview", headers=OPERATOR))
    # The sample is the first contact who will be texted, not Pat0, who opted out.
    assert (preview["sample_contact"]["first_name"], preview["creatives"][0]["segments"]) == ("Pat2", 2)
    assert preview["projected"] == {"contacts": 6, "excluded_by_reason": {"dnc": 2}, "excluded_estimated": False,
                                    "messages": 4, "segments": 8, "cost": 0.06, "sending_cost": 0.06,
                                    "validation_cost": 0.0, "price_per_segment": 0.0079, "pool_numbers": 3,
                                    "effective_rate_per_second": 2.0, "duration_minutes": 0.0}


def test_preview_of_a_list_longer_than_it_checks_estimates_the_dnc_share(fns, monkeypatch):
    from sendline.services import campaigns

    monkeypatch.setattr(campaigns, "PREVIEW_DNC_CHECKS", 4)
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(NEW_YORK))
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phones": [NEW_YORK[1]]}))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"])
    projected = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/preview", headers=OPERATOR))["projected"]
    # One of the first four: a quarter of six, rounded.
    assert {k: projected[k] for k in ("contacts", "excluded_by_reason", "excluded_estimated", "messages")} == {
        "contacts": 6, "excluded_by_reason": {"dnc": 2}, "excluded_estimated": True, "messages": 4}


def test_quick_send_goes_through_the_queue_and_preview_counts_any_body(fns, daytime):
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    sent = ok(fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
        "to": "(212) 555-0142", "brand_id": brand["brand_id"], "body": "Call {call_number}"}), 202)
    assert (sent["status"], sent["from"], sent["to"], sent["segments"]) == ("queued", "+12125550900", "+1212***0142", 1)
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        fns.drain_sends()
    assert parse_qs(route.calls[0].request.content.decode())["Body"] == ["Call (888) 555-0123"]
    assert ok(fns.http("GET", f"/v1/messages/{sent['message_id']}", headers=OPERATOR))["status"] == "sent"
    ok(fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": "2125550143"}))
    refused = fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
        "to": "2125550143", "from": "+12125550900", "body": "hello"})
    assert (refused.status, refused.body["errors"]) == (409, [{"field": "to", "reason": "is on the do-not-contact list"}])
    preview = ok(fns.http("POST", "/v1/messages/preview", headers=INTEGRATOR, json_body={"body": "Hi 😀"}))
    assert {k: preview[k] for k in ("characters", "encoding", "segments", "ucs2_characters")} == {
        "characters": 4, "encoding": "UCS-2", "segments": 1, "ucs2_characters": ["😀"]}


def test_quick_send_errors_name_the_field(fns):
    brand_with_numbers(fns, numbers=("+12125550900",))
    no_sender = fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={"to": "2125550142", "body": "hello"})
    assert (no_sender.status, no_sender.body["errors"]) == (422, [{
        "field": "from", "reason": "give either from (a sending number) or brand_id (its pool picks the number)"}])
    no_body = fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={"to": "2125550142", "from": "+12125550900"})
    assert (no_body.status, no_body.body["errors"]) == (422, [{"field": "body", "reason": "give either body or template_id"}])
    for sender in ("+12125550999", "not a number"):
        unknown = fns.http("POST", "/v1/messages", headers=OPERATOR,
                           json_body={"to": "2125550142", "from": sender, "body": "hello"})
        assert (unknown.status, unknown.body["errors"]) == (404, [{"field": "from", "reason": "no sending number like this"}])


def test_legacy_campaign_routes_answer_integrators(fns):
    made = launched(fns)
    listed = ok(fns.http("GET", "/api.php?action=ext_campaigns", headers=INTEGRATOR))
    assert [(c["campaign_id"], c["status"], c["progress"]["total_contacts"]) for c in listed["campaigns"]] == [
        (made["campaign_id"], "scheduled", 6)]
    assert "cursor" not in json.dumps(listed)
    status = ok(fns.http("GET", f"/api.php?action=ext_campaign_status&campaign_id={made['campaign_id']}",
                         headers=INTEGRATOR))
    assert (status["success"], status["status"], status["progress"]["percent"]) == (True, "scheduled", 0.0)
    missing = fns.http("GET", "/api.php?action=ext_campaign_status", headers=INTEGRATOR)
    assert (missing.status, missing.body["errors"]) == (400, [{"field": "campaign_id", "reason": "is required"}])
    assert ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}", headers=INTEGRATOR))["status"] == "scheduled"


def test_an_import_whose_file_is_gone_fails_with_the_reason(fns):
    from sendline.services.contact_lists import run_import

    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "Lost"}), 201)
    started = ok(fns.http("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports", headers=OPERATOR), 202)
    result = run_import(runtime.records(), runtime.uploads(), started["import_id"], lambda: NOON)
    assert (result["status"], result["error"], result["rows_read"]) == (
        "failed", f"the uploaded file imports/{started['import_id']}/contacts.csv is gone", 0)
    report = fns.http("GET", f"/v1/imports/{started['import_id']}/report.csv", headers=OPERATOR)
    assert (report.status, report.body.splitlines()) == (200, [
        "line,outcome,reason,value", f",import_failed,the uploaded file imports/{started['import_id']}/contacts.csv is gone,"])


def test_the_report_of_an_import_that_failed_midway_has_the_rows_before_and_the_reason(fns):
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "Cut"}), 201)
    body = "phone,first_name\n2125550101,Ann\n212-555-CALL,Bob\n2125550101,Ann again\n" + "x" * (2 * 1024 * 1024)
    started = ok(fns.http("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports",
                          headers={**OPERATOR, "content-type": "text/csv"}, body=body), 202)
    fns.drain_imports()
    record = ok(fns.http("GET", f"/v1/imports/{started['import_id']}", headers=OPERATOR))
    assert {k: record[k] for k in ("status", "error", "rows_read", "new_contacts")} == {
        "status": "failed", "error": "line 5 is longer than 1048576 characters: not a contacts list",
        "rows_read": 3, "new_contacts": 1}
    report = fns.http("GET", f"/v1/imports/{started['import_id']}/report.csv", headers=OPERATOR)
    assert (report.status, report.body.splitlines()) == (200, [
        "line,outcome,reason,value", "3,rejected,contains letters,212-555-CALL",
        "4,duplicate,same phone as line 2,+1212***0101",
        ",import_failed,line 5 is longer than 1048576 characters: not a contacts list,"])


def test_a_file_that_is_not_a_csv_fails_the_import_with_the_reason(fns):
    contact_list = ok(fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": "Oops"}), 201)
    started = ok(fns.http("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports",
                          headers={**OPERATOR, "content-type": "text/csv"}, body="name,email\nAnn,a@example.com\n"), 202)
    fns.drain_imports()
    report = ok(fns.http("GET", f"/v1/imports/{started['import_id']}", headers=OPERATOR))
    assert (report["status"], report["error"]) == (
        "failed", "no phone column (found name, email): name it phone, mobile or cell")


def test_a_text_held_back_by_pacing_is_queued_again_not_failed(fns, monkeypatch):
    from devstack.pollers import sqs_event

    # The three texts reach the worker at the same moment.
    monkeypatch.setattr(fns.module("send_worker"), "utcnow", lambda: NOON)

    records, queue = runtime.records(), runtime.send_queue()
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    imported = imported_list(fns, contacts_csv(NEW_YORK[:3]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"], rate_per_second=5)
    launch(fns, made["campaign_id"])
    dispatch_tick(records, queue, NOON)
    sends = fns.queues["sends"]
    got = fns.sqs.receive_message(QueueUrl=sends.url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 3
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(side_effect=created)
        response = fns.handler("send_worker")(sqs_event(got, sends.arn), fns.context("send_worker"))
    # One number at 1 MPS: one goes now; the other two, whose number is busy while the
    # campaign's turn is free, are queued again as new messages.
    assert response == {"batchItemFailures": []}
    statuses = sorted(m["status"] for m in ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/messages",
                                                          headers=OPERATOR))["messages"])
    assert statuses == ["queued", "queued", "sent"]
    for message in got:
        fns.sqs.delete_message(QueueUrl=sends.url, ReceiptHandle=message["ReceiptHandle"])
    attributes = fns.sqs.get_queue_attributes(QueueUrl=sends.url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesDelayed"]) == 2


def test_flows_and_quick_sends_reuse_saved_templates(fns):
    from tests.integration.test_lead_flow import make_flow

    first = ok(fns.http("POST", "/v1/templates", headers=OPERATOR,
                        json_body={"name": "Welcome", "body": "Hi {first_name}, call {call_number}"}), 201)
    drip = ok(fns.http("POST", "/v1/templates", headers=OPERATOR, json_body={"name": "Nudge", "body": "Still there?"}), 201)
    flow_id = make_flow(fns, initial_message=None, initial_template_id=first["template_id"],
                        drips=[{"delay_minutes": 5, "template_id": drip["template_id"]}])
    flow = ok(fns.http("GET", f"/v1/flows/{flow_id}", headers=OPERATOR))
    assert (flow["initial_message"], flow["drips"][0]["message"]) == ("Hi {first_name}, call {call_number}", "Still there?")
    assert flow["variables"] == ["first_name", "call_number"]
    both = fns.http("POST", "/v1/flows", headers=OPERATOR, json_body={
        "name": "x", "from_number": "+12125550100", "initial_message": "hi", "initial_template_id": first["template_id"]})
    assert (both.status, both.body["errors"]) == (
        422, [{"field": "initial_message", "reason": "give either initial_message or initial_template_id"}])
    missing = fns.http("POST", "/v1/flows", headers=OPERATOR, json_body={
        "name": "x", "from_number": "+12125550100", "initial_template_id": "tp_nope"})
    assert (missing.status, missing.body["errors"]) == (404, [{"field": "initial_template_id", "reason": "no template with this id"}])
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    sent = ok(fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
        "to": "2125550142", "brand_id": brand["brand_id"], "template_id": first["template_id"],
        "variables": {"first_name": "Ann"}}), 202)
    assert sent["characters"] == len("Hi Ann, call (888) 555-0123")


def test_contacts_added_to_the_list_after_launch_are_not_the_campaigns(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, phones=NEW_YORK[:2])
    started = ok(fns.http("POST", f"/v1/contact-lists/{made['list_id']}/imports",
                          headers={**OPERATOR, "content-type": "text/csv"},
                          body=contacts_csv([NEW_YORK[0], "+12125550100", "+12125550199"])), 202)
    assert fns.drain_imports() == 1
    report = ok(fns.http("GET", f"/v1/imports/{started['import_id']}", headers=OPERATOR))
    assert (report["new_contacts"], report["already_in_list"]) == (2, 1)
    assert dispatch_tick(records, queue, NOON).released == {made["campaign_id"]: 2}
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        worker(fns, NOON)
    assert sorted(parse_qs(c.request.content.decode())["To"][0] for c in route.calls) == NEW_YORK[:2]
    assert dispatch_tick(records, queue, NOON + timedelta(minutes=1)).completed == [made["campaign_id"]]
    assert progress(fns, made["campaign_id"])["progress"]["total_contacts"] == 2


def test_settings_merge_partial_changes_and_new_campaigns_copy_them(fns):
    changed = ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={
        "auto_pause": {"min_sends": 300}, "validation": {"enabled_for_campaigns": True, "min_score": 60}}))
    assert changed["auto_pause"] == {"min_sends": 300, "error_rate_threshold_pct": 20.0}
    assert changed["validation"] == {"enabled_for_campaigns": True, "min_score": 60, "cost_per_lookup": 0.005,
                                     "provider": "activity_score"}
    assert ok(fns.http("GET", "/v1/settings", headers=OPERATOR)) == changed
    bad = fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={"auto_pause": {"error_rate_threshold_pct": 120}})
    assert (bad.status, bad.body["errors"]) == (
        422, [{"field": "auto_pause.error_rate_threshold_pct", "reason": "input should be less than or equal to 100"}])
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv(NEW_YORK[:1]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"])
    assert (made["auto_pause"]["min_sends"], made["validation"]["min_score"]) == (300, 60)
    ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={"auto_pause": {"min_sends": 900}}))
    assert progress(fns, made["campaign_id"])["auto_pause"]["min_sends"] == 300


def test_a_carrier_429_on_the_last_text_keeps_the_campaign_running_until_it_is_sent(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, phones=NEW_YORK[:1])
    cid = made["campaign_id"]
    dispatch_tick(records, queue, NOON)
    busy = httpx.Response(429, json={"code": 20429, "message": "Too Many Requests"})
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(return_value=busy)
        got = fns.sqs.receive_message(QueueUrl=fns.queues["sends"].url)["Messages"][0]
        request = SendRequest.from_body(got["Body"])
        try:
            send_message(records, runtime.twilio(), request, NOON)
            raise AssertionError("a 429 must ask for a retry")
        except Exception as exc:  # noqa: BLE001 - RetryLater
            assert type(exc).__name__ == "RetryLater"
    assert dispatch_tick(records, queue, NOON + timedelta(minutes=1)).completed == []
    assert progress(fns, cid)["status"] == "running"
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert send_message(records, runtime.twilio(), request, NOON + timedelta(minutes=1)) == SendResult.SENT
    assert route.call_count == 1
    assert dispatch_tick(records, queue, NOON + timedelta(minutes=2)).completed == [cid]


def test_a_campaigns_cost_is_its_segments_at_the_price_per_segment_until_the_carrier_prices_them(fns):
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, phones=NEW_YORK[:2])
    dispatch_tick(records, queue, NOON)
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(return_value=httpx.Response(201, json={
            "sid": "SM" + "c" * 32, "status": "queued", "num_segments": "2", "price": None}))
        worker(fns, NOON)
    view = progress(fns, made["campaign_id"])["progress"]
    assert (view["sent"], view["segments"], view["cost_micros"], view["cost"]) == (2, 4, 31600, 0.0316)
