"""The worker's send path and the carrier's receipts, through the real handlers and moto."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx
from twilio.request_validator import RequestValidator

from sendline import runtime
from sendline.adapters.queue import SendRequest
from sendline.services.drips import run_due_messages
from tests.integration.conftest import DAYTIME, INTEGRATOR, OPERATOR, TWILIO_TOKEN, form
from tests.integration.test_lead_flow import MESSAGES_URL, make_flow, twilio_created

# Texts wait outside their recipients' send windows: every handler's clock reads DAYTIME.
pytestmark = pytest.mark.usefixtures("daytime")

STATUS_URL = "https://api.sendline.test/webhooks/twilio/status"
SID = "SM" + "b" * 32


def lead(fns, phone="2125550142", **fields):
    flow_id = fields.pop("flow_id", None) or make_flow(fns)
    result = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": phone, **fields})
    assert result.status == 200, result.body
    return flow_id, result.body["lead_id"]


def messages(fns, lead_id):
    return fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body["messages"]


def send_all(fns, response):
    with respx.mock(assert_all_called=False) as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=response if callable(response) else None,
                                                return_value=None if callable(response) else response)
        results = fns.drain_sends()
    return route, results


def callback(fns, params, signature=None, url=STATUS_URL):
    if signature is None:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature:
        headers["x-twilio-signature"] = signature
    return fns.http("POST", "/webhooks/twilio/status", body=form(params), headers=headers)


def receipt(status, sid=SID, **extra):
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": "AC" + "1" * 32, "To": "+12125550142", "From": "+12125550100", "ApiVersion": "2010-04-01",
            **extra}


def flow_stats(fns):
    return fns.http("GET", "/v1/flows", headers=OPERATOR).body["flows"][0]["stats"]


def test_receipts_move_forward_only_and_count_once(fns):
    _, lead_id = lead(fns)
    send_all(fns, twilio_created(SID))
    assert callback(fns, receipt("delivered", RawDlrDoneDate="2612031645")).status == 200
    assert callback(fns, receipt("sent")).status == 200  # late: changes nothing
    assert callback(fns, receipt("delivered")).status == 200  # duplicate
    assert callback(fns, receipt("undelivered", ErrorCode="30003")).status == 200  # contradicts a final status
    first = messages(fns, lead_id)[0]
    assert (first["status"], first["error_code"]) == ("delivered", None)
    assert first["delivered_at"] is not None
    stats = flow_stats(fns)
    assert (stats["sent"], stats["delivered"], stats["undelivered"], stats["pending_dlr"]) == (1, 1, 0, 0)
    totals = fns.http("GET", "/v1/stats", headers=INTEGRATOR).body
    assert (totals["total_sent"], totals["delivered"], totals["pending_dlr"], totals["delivery_rate"]) == (1, 1, 0, 100.0)
    assert totals["sent_today"] == 1


def test_undelivered_receipt_records_the_error_code(fns):
    _, lead_id = lead(fns)
    send_all(fns, twilio_created(SID))
    callback(fns, receipt("sent"))
    callback(fns, receipt("undelivered", ErrorCode="30005"))
    first = messages(fns, lead_id)[0]
    assert (first["status"], first["error_code"]) == ("undelivered", "30005")
    assert (flow_stats(fns)["undelivered"], flow_stats(fns)["pending_dlr"]) == (1, 0)
    flow_id = fns.http("GET", "/v1/flows", headers=OPERATOR).body["flows"][0]["flow_id"]
    detail = fns.http("GET", f"/v1/flows/{flow_id}", headers=OPERATOR).body
    assert len(detail["hourly"]) == 24
    assert detail["hourly"][-1]["hour"] == DAYTIME.strftime("%Y-%m-%dT%H")
    assert {k: detail["hourly"][-1][k] for k in ("sent", "delivered", "undelivered")} == {
        "sent": 1, "delivered": 0, "undelivered": 1}
    assert sum(h["sent"] for h in detail["hourly"][:-1]) == 0


def test_unsigned_or_tampered_callbacks_get_403(fns):
    _, lead_id = lead(fns)
    send_all(fns, twilio_created(SID))
    unsigned = callback(fns, receipt("delivered"), signature="")
    good = RequestValidator(TWILIO_TOKEN).compute_signature(STATUS_URL, receipt("undelivered"))
    tampered = callback(fns, receipt("delivered"), signature=good)
    assert (unsigned.status, tampered.status) == (403, 403)
    assert tampered.body["errors"][0]["field"] == "X-Twilio-Signature"
    assert messages(fns, lead_id)[0]["status"] == "sent"


def test_a_receipt_that_overtakes_the_send_is_applied_once_the_send_is_recorded(fns):
    _, lead_id = lead(fns)
    assert callback(fns, receipt("delivered")).status == 200  # the sid is not known yet
    send_all(fns, twilio_created(SID))
    assert messages(fns, lead_id)[0]["status"] == "delivered"
    assert flow_stats(fns)["pending_dlr"] == 0


def test_permanent_carrier_error_fails_without_retry(fns):
    _, lead_id = lead(fns, phone="+15005550001")
    route, results = send_all(fns, httpx.Response(400, json={
        "code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.", "status": 400}))
    assert route.call_count == 1
    assert results[0] == {"batchItemFailures": []}
    first = messages(fns, lead_id)[0]
    assert (first["status"], first["error_code"]) == ("failed", "21211")
    assert flow_stats(fns)["failed"] == 1


def test_carrier_429_is_retried_later_then_sent(fns):
    _, lead_id = lead(fns)
    answers = iter([httpx.Response(429, json={"code": 20429, "message": "Too Many Requests", "status": 429}),
                    twilio_created(SID)])
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=lambda request: next(answers))
        first_round = fns.drain_sends(max_rounds=1)
        assert len(first_round[0]["batchItemFailures"]) == 1
        assert messages(fns, lead_id)[0]["status"] == "queued"
        # The worker set the message's visibility for its backoff; make it visible now.
        fns.sqs.purge_queue(QueueUrl=fns.queues["sends"].url)
        runtime.send_queue().send([SendRequest(f"{lead_id}-0")])
        fns.drain_sends()
    assert route.call_count == 2
    first = messages(fns, lead_id)[0]
    assert (first["status"], first["attempts"], first["provider_sid"]) == ("sent", 2, SID)


def test_read_timeout_is_recorded_as_unknown_and_never_resent(fns):
    _, lead_id = lead(fns)
    route, results = send_all(fns, lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=request)))
    assert route.call_count == 1
    assert results[0] == {"batchItemFailures": []}
    assert messages(fns, lead_id)[0]["status"] == "unknown"
    runtime.send_queue().send([SendRequest(f"{lead_id}-0")])
    route_again, _ = send_all(fns, twilio_created(SID))
    assert route_again.call_count == 0


def test_redelivered_queue_message_sends_once(fns):
    _, lead_id = lead(fns)
    runtime.send_queue().send([SendRequest(f"{lead_id}-0"), SendRequest(f"{lead_id}-0")])
    route, _ = send_all(fns, twilio_created(SID))
    assert route.call_count == 1
    assert flow_stats(fns)["sent"] == 1


def test_dnc_number_is_never_texted(fns):
    fns.http("POST", "/api.php?action=ext_dnc_add", headers=INTEGRATOR, json_body={"phones": ["(212) 555-0142"]})
    checked = fns.http("GET", "/api.php?action=ext_dnc_check&phone=2125550142", headers=INTEGRATOR).body
    assert (checked["dnc"], checked["phone"], checked["source"]) == (True, "+12125550142", "api")
    flow_id = make_flow(fns)
    result = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": "2125550142"})
    assert (result.body["sent"], result.body["drips_queued"]) == (False, 0)
    route, _ = send_all(fns, twilio_created(SID))
    assert route.call_count == 0
    assert [m["status"] for m in messages(fns, result.body["lead_id"])] == ["skipped", "cancelled", "cancelled"]


def test_stop_after_queueing_wins_at_the_last_moment(fns):
    _, lead_id = lead(fns)
    fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phones": ["2125550142"]})
    route, _ = send_all(fns, twilio_created(SID))
    assert route.call_count == 0
    first = messages(fns, lead_id)[0]
    assert (first["status"], first["skip_reason"]) == ("skipped", "opted_out")
    report = run_due_messages(runtime.records(), runtime.send_queue(), DAYTIME + timedelta(minutes=3))
    assert (report.due, report.cancelled, report.queued) == (2, 2, 0)
    assert [m["status"] for m in messages(fns, lead_id)] == ["skipped", "cancelled", "cancelled"]
    assert flow_stats(fns)["pending_drips"] == 0


def test_drips_fire_when_due_and_wait_while_paused(fns, daytime):
    flow_id, lead_id = lead(fns, first_name="Ann")
    send_all(fns, twilio_created(SID))
    now = DAYTIME
    assert run_due_messages(runtime.records(), runtime.send_queue(), now + timedelta(seconds=30)).queued == 0
    assert run_due_messages(runtime.records(), runtime.send_queue(), now + timedelta(seconds=61)).queued == 1
    daytime["value"] = now + timedelta(seconds=61)
    send_all(fns, twilio_created("SM" + "c" * 32))
    assert [m["status"] for m in messages(fns, lead_id)] == ["sent", "sent", "scheduled"]

    assert fns.http("POST", f"/v1/flows/{flow_id}/pause", headers=OPERATOR).body["status"] == "paused"
    report = run_due_messages(runtime.records(), runtime.send_queue(), now + timedelta(minutes=5))
    assert (report.queued, report.parked) == (0, 1)
    assert run_due_messages(runtime.records(), runtime.send_queue(), now + timedelta(minutes=6)).due == 0
    resumed = fns.http("POST", f"/v1/flows/{flow_id}/resume", headers=OPERATOR).body
    assert (resumed["status"], resumed["released_messages"]) == ("active", 1)
    assert run_due_messages(runtime.records(), runtime.send_queue(), now + timedelta(minutes=6)).queued == 1
    daytime["value"] = now + timedelta(minutes=6)
    send_all(fns, twilio_created("SM" + "d" * 32))
    assert [m["status"] for m in messages(fns, lead_id)] == ["sent", "sent", "sent"]
    stats = flow_stats(fns)
    assert (stats["sent"], stats["drips_sent"], stats["pending_drips"]) == (3, 2, 0)
    activity = fns.http("GET", f"/v1/flows/{flow_id}/activity", headers=OPERATOR).body["activity"]
    assert [(a["step"], a["status"]) for a in activity] == [(2, "sent"), (1, "sent"), (0, "sent")]
    assert activity[0]["to"] == "+1212***0142"


def test_a_request_for_a_drip_before_it_is_due_sends_nothing_and_the_drip_still_goes_when_due(fns, daytime):
    # Given a lead whose first drip is due a minute after its first text
    flow_id, lead_id = lead(fns, first_name="Ann")
    send_all(fns, twilio_created(SID))

    # When a send request names the drip before it is due (stale, re-driven or forged)
    runtime.send_queue().send([SendRequest(f"{lead_id}-1")])
    route, results = send_all(fns, twilio_created("SM" + "c" * 32))

    # Then nothing goes to the carrier, the request is done with (not retried), and the drip
    # keeps waiting for its time
    assert (route.call_count, results) == (0, [{"batchItemFailures": []}])
    assert [m["status"] for m in messages(fns, lead_id)] == ["sent", "scheduled", "scheduled"]

    # And when it is due, its scheduler queues it and it goes once
    assert run_due_messages(runtime.records(), runtime.send_queue(), DAYTIME + timedelta(seconds=61)).queued == 1
    daytime["value"] = DAYTIME + timedelta(seconds=61)
    route, results = send_all(fns, twilio_created("SM" + "c" * 32))
    assert (route.call_count, results) == (1, [{"batchItemFailures": []}])
    assert [m["status"] for m in messages(fns, lead_id)] == ["sent", "sent", "scheduled"]


def test_inbound_stop_puts_the_sender_on_dnc(fns):
    params = {"MessageSid": "SM" + "e" * 32, "AccountSid": "AC" + "1" * 32, "From": "+12125550142",
              "To": "+12125550100", "Body": " Stop. ", "NumMedia": "0", "SmsStatus": "received"}
    url = "https://api.sendline.test/webhooks/twilio/inbound"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    result = fns.http("POST", "/webhooks/twilio/inbound", body=form(params),
                      headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})
    assert result.status == 200
    assert result.headers["content-type"] == "text/xml"
    # " Stop. " is not Twilio's keyword (its filtering takes only the exact word), so the
    # platform confirms the opt-out itself, once.
    assert result.body == ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>Sendline: You are unsubscribed '
                           'and will receive no more messages. Reply START to resubscribe.</Message></Response>')
    checked = fns.http("GET", "/v1/dnc/+12125550142", headers=OPERATOR).body
    assert (checked["dnc"], checked["source"]) == (True, "keyword")


def test_worker_that_loses_its_claim_to_the_queued_mark_reads_again_and_sends(fns):
    from sendline.services.sending import SendResult, send_message

    _, lead_id = lead(fns)
    records = runtime.records()
    real_get = records.get_message
    stale = {**real_get(f"{lead_id}-0"), "status": "scheduled"}  # as read just before the API marked it queued
    reads = iter([stale])
    records.get_message = lambda msg_id: next(reads, None) or real_get(msg_id)
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(return_value=twilio_created(SID))
        result = send_message(records, runtime.twilio(), SendRequest(f"{lead_id}-0"), DAYTIME)
    assert (result, route.call_count) == (SendResult.SENT, 1)
    assert messages(fns, lead_id)[0]["status"] == "sent"


def test_activity_limit_must_be_a_small_whole_number(fns):
    flow_id = make_flow(fns)
    for bad in ("abc", "0", "999", "-1"):
        result = fns.http("GET", f"/v1/flows/{flow_id}/activity?limit={bad}", headers=OPERATOR)
        assert (result.status, result.body["errors"][0]) == (
            422, {"field": "limit", "reason": "must be a whole number from 1 to 200"})
    assert fns.http("GET", f"/v1/flows/{flow_id}/activity?limit=5", headers=OPERATOR).status == 200
    missing = fns.http("GET", "/v1/flows/fl_nope/activity", headers=OPERATOR)
    assert (missing.status, missing.body["errors"][0]["field"]) == (404, "flow_id")


def test_a_signed_receipt_with_an_impossible_sid_is_a_422(fns):
    result = callback(fns, receipt("delivered", sid="SM" + "f" * 5000))
    assert (result.status, result.body["errors"][0]) == (422, {"field": "MessageSid", "reason": "is not a message sid"})
