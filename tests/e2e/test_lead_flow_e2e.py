"""The local stack over HTTP, as integrators, operators and carriers use it."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import httpx
import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.polling import wait_for

_numbers = itertools.count(100)


def fresh_phone() -> str:
    """A fictional 555-01xx line no other test of this run uses."""
    n = next(_numbers)
    area = ["212", "312", "415", "602", "907", "808", "787", "305"][n // 100 % 8]
    return f"+1{area}5550{n % 100 + 100:03d}"[:12]


def operator(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack['admin_token']}"}


def integrator(stack) -> dict[str, str]:
    return {"X-API-Key": stack["api_key"]}


def create_flow(api, stack, drips=()) -> str:
    response = api.post("/v1/flows", headers=operator(stack), json={
        "name": "E2E flow", "from_number": "+12125550100", "call_number": "+18885550123",
        "initial_message": "Hi {first_name}, call {call_number}.", "drips": list(drips)})
    assert response.status_code == 201, response.text
    return response.json()["flow_id"]




def lead_messages(api, stack, lead_id):
    return api.get(f"/v1/leads/{lead_id}", headers=operator(stack)).json()["messages"]


def sim_messages_to(stack, phone):
    messages = httpx.get(f"{stack['carrier_url']}/_sim/messages").json()["messages"]
    return [m for m in messages if m["to"] == phone]


def test_a_posted_lead_becomes_a_delivered_text(api, stack):
    flow_id = create_flow(api, stack)
    phone = fresh_phone()
    response = api.post("/v1/leads", headers=integrator(stack),
                        json={"flow_id": flow_id, "phone": phone, "first_name": "Zoë"})
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["sent"], body["drips_queued"]) == (True, True, 0)
    first = wait_for(lambda: next((m for m in lead_messages(api, stack, body["lead_id"])
                                   if m["status"] in ("delivered", "undelivered")), None))
    # The simulator's seeded outcome for this number decides; both are recorded outcomes.
    sim = sim_messages_to(stack, phone)
    assert len(sim) == 1
    assert sim[0]["body"] == "Hi Zoë, call (888) 555-0123."
    assert first["provider_sid"] == sim[0]["sid"]
    assert first["status"] == sim[0]["status"]


def test_duplicate_submission_texts_once(api, stack):
    flow_id = create_flow(api, stack)
    phone = fresh_phone()
    first = api.post("/v1/leads", headers=integrator(stack), json={"flow_id": flow_id, "phone": phone}).json()
    again = api.post(f"/api.php?action=ext_lead_submit&api_key={stack['api_key']}",
                     json={"flow_id": flow_id, "phone": phone[2:5] + "." + phone[5:8] + "." + phone[8:]}).json()
    assert again["lead_id"] == first["lead_id"]
    assert again["duplicate"] is True
    wait_for(lambda: lead_messages(api, stack, first["lead_id"])[0]["status"] not in ("scheduled", "queued", "sending"),
             describe=lambda: lead_messages(api, stack, first["lead_id"]))
    time.sleep(1.0)
    assert len(sim_messages_to(stack, phone)) == 1


def test_a_dnc_phone_is_never_texted(api, stack):
    phone = fresh_phone()
    added = api.post("/api.php?action=ext_dnc_add", headers=integrator(stack), json={"phones": [phone]}).json()
    assert added["added"] == 1
    flow_id = create_flow(api, stack, drips=[{"delay_minutes": 1, "message": "again"}])
    body = api.post("/v1/leads", headers=integrator(stack), json={"flow_id": flow_id, "phone": phone}).json()
    assert (body["sent"], body["drips_queued"]) == (False, 0)
    time.sleep(2.0)
    assert sim_messages_to(stack, phone) == []
    assert [m["status"] for m in lead_messages(api, stack, body["lead_id"])] == ["skipped", "cancelled"]


def test_tampered_callback_gets_403(api, stack):
    url = f"{stack['api_url']}/webhooks/twilio/status"
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": stack["twilio_account_sid"]}
    signature = RequestValidator(stack["twilio_auth_token"]).compute_signature(url, params)
    good = httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})
    tampered = httpx.post(url, data={**params, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": signature})
    unsigned = httpx.post(url, data=params)
    assert (good.status_code, tampered.status_code, unsigned.status_code) == (200, 403, 403)


def test_the_301st_request_in_a_minute_gets_429(api, stack):
    key = api.post("/v1/api-keys", headers=operator(stack), json={"name": "rate test"}).json()["api_key"]
    # The limit counts per clock minute, and 301 requests take 20-30 s on the local stack:
    # start early in a minute so they all fall in the same one.
    if datetime.now(UTC).second > 20:
        time.sleep(61 - datetime.now(UTC).second)
    with httpx.Client(base_url=stack["api_url"], headers={"X-API-Key": key}, timeout=10) as client:
        statuses = [client.get("/v1/stats").status_code for _ in range(300)]
        limited = client.get("/v1/stats")
    assert statuses == [200] * 300
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_twilio_client_sends_through_the_simulator_and_validates_its_callbacks(stack):
    client = Client(stack["twilio_account_sid"], stack["twilio_auth_token"])
    client.api.base_url = stack["carrier_url"]
    message = client.messages.create(to="+15005550006", from_="+12125550100", body="judge")
    assert message.sid.startswith("SM") and message.num_segments == "1"


def test_the_stack_accepts_every_signed_simulator_callback(api, stack):
    flow_id = create_flow(api, stack)
    phone = fresh_phone()
    lead_id = api.post("/v1/leads", headers=integrator(stack), json={"flow_id": flow_id, "phone": phone}).json()["lead_id"]
    status = wait_for(lambda: lead_messages(api, stack, lead_id)[0]["status"] in ("delivered", "undelivered", "failed")
                      and lead_messages(api, stack, lead_id)[0]["status"],
                      describe=lambda: (lead_messages(api, stack, lead_id), sim_messages_to(stack, phone)))
    callbacks = sim_messages_to(stack, phone)[0]["callbacks"]
    expected = {"delivered": 2, "undelivered": 2, "failed": 1}[status]
    assert [c["url"] for c in callbacks] == [f"{stack['api_url']}/webhooks/twilio/status"] * expected
    assert [c["http_status"] for c in callbacks] == [200] * expected


@pytest.mark.parametrize("bad, field", [({"phone": "2125550142"}, "flow_id"), ({"flow_id": "x", "phone": "nope"}, "phone")])
def test_bad_input_over_http_is_a_4xx_naming_the_field(api, stack, bad, field):
    response = api.post("/v1/leads", headers=integrator(stack), json=bad)
    assert 400 <= response.status_code < 500
    assert response.json()["errors"][0]["field"] == field


def text_from_handset(stack, phone, to, body):
    response = httpx.post(f"{stack['carrier_url']}/_sim/inbound", json={"from": phone, "to": to, "body": body})
    assert response.status_code == 202, response.text
    return response.json()["sid"]


def inbound_record(api, stack, sid):
    listing = api.get("/v1/inbound?show_phones=true&limit=200", headers=operator(stack)).json()["inbound"]
    return next((r for r in listing if r["message_sid"] == sid), None)


def test_a_plain_language_stop_lists_the_number_cancels_drips_and_is_confirmed_once(api, stack):
    flow_id = create_flow(api, stack, drips=[{"delay_minutes": 30, "message": "Still there?"}])
    phone = fresh_phone()
    lead_id = api.post("/v1/leads", headers=integrator(stack), json={"flow_id": flow_id, "phone": phone}).json()["lead_id"]
    wait_for(lambda: lead_messages(api, stack, lead_id)[0]["status"] in ("sent", "delivered", "undelivered"))

    sid = text_from_handset(stack, phone, "+12125550100", "Please stop texting me")
    record = wait_for(lambda: inbound_record(api, stack, sid))
    assert (record["intent"], record["keyword"], record["action"]) == ("opt_out", "phrase: STOP TEXTING ME",
                                                                       "opted_out")
    assert api.get(f"/v1/dnc/{phone}", headers=operator(stack)).json()["source"] == "phrase"
    assert [m["status"] for m in lead_messages(api, stack, lead_id)][1:] == ["cancelled"]
    # The simulator sends the TwiML confirmation from the number the handset texted, once.
    confirmation = "Sendline: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    wait_for(lambda: [m for m in sim_messages_to(stack, phone) if m["body"] == confirmation])
    text_from_handset(stack, phone, "+12125550100", "no more texts")
    time.sleep(1)
    replies = [m for m in sim_messages_to(stack, phone) if m["body"] == confirmation]
    assert [(m["from"], m["direction"]) for m in replies] == [("+12125550100", "outbound-api")]


def test_help_gets_the_brands_help_text_through_the_carrier(api, stack):
    brand = api.post("/v1/brands", headers=operator(stack), json={
        "name": "E2E Help", "help_text": "E2E Help: call 888-555-0123. Reply STOP to opt out."}).json()
    number = "+12125550188"
    assert api.post("/v1/numbers", headers=operator(stack),
                    json={"number": number, "brand_id": brand["brand_id"]}).status_code == 201
    phone = fresh_phone()
    text_from_handset(stack, phone, number, "HELP")
    wait_for(lambda: [m for m in sim_messages_to(stack, phone)
                      if m["body"] == "E2E Help: call 888-555-0123. Reply STOP to opt out." and m["from"] == number])
