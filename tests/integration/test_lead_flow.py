"""A lead posted to the API becomes a sent text with drips, through the real handlers and moto."""

from __future__ import annotations

import httpx
import respx

from tests.integration.conftest import INTEGRATOR, OPERATOR, TWILIO_BASE, TWILIO_SID

MESSAGES_URL = f"{TWILIO_BASE}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


def twilio_created(sid: str = "SM" + "a" * 32, segments: str = "1") -> httpx.Response:
    return httpx.Response(201, json={"sid": sid, "status": "queued", "num_segments": segments, "price": None})


def make_flow(fns, **overrides) -> str:
    body = {"name": "Auto leads", "from_number": "+12125550100", "call_number": "8885550123",
            "initial_message": "Hi {first_name}, call {call_number}.",
            "drips": [{"delay_minutes": 1, "message": "{first_name} {last_name}, still there?"},
                      {"delay_minutes": 2, "message": "Last call: {call_number}"}]}
    body.update(overrides)
    result = fns.http("POST", "/v1/flows", json_body=body, headers=OPERATOR)
    assert result.status == 201, result.body
    return result.body["flow_id"]


def test_lead_is_sent_and_recorded(fns, daytime):
    flow_id = make_flow(fns)
    submitted = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={
        "flow_id": flow_id, "phone": "(212) 555-0142", "first_name": "José", "last_name": "", "source": "fb"})
    assert submitted.status == 200, submitted.body
    assert submitted.body["success"] is True
    assert submitted.body["sent"] is True
    assert submitted.body["drips_queued"] == 2
    assert submitted.body["duplicate"] is False
    lead_id = submitted.body["lead_id"]
    assert submitted.body["tracking_id"] == f"{lead_id}-0"

    with respx.mock(assert_all_called=True) as carrier:
        route = carrier.post(MESSAGES_URL).mock(return_value=twilio_created())
        fns.drain_sends()
    sent_form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert sent_form == {"To": "+12125550142", "From": "+12125550100", "Body": "Hi José, call (888) 555-0123.",
                         "StatusCallback": "https://api.sendline.test/webhooks/twilio/status"}

    lead = fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body
    assert lead["phone"] == "+12125550142"
    assert [(m["step"], m["status"]) for m in lead["messages"]] == [(0, "sent"), (1, "scheduled"), (2, "scheduled")]
    assert lead["messages"][0]["provider_sid"] == "SM" + "a" * 32
    assert lead["messages"][0]["segments"] == 1
    assert lead["messages"][1]["body"] == "José, still there?"

    flows = fns.http("GET", "/v1/flows", headers=OPERATOR).body["flows"]
    stats = flows[0]["stats"]
    assert (stats["leads"], stats["sent"], stats["pending_drips"], stats["pending_dlr"]) == (1, 1, 2, 1)


def test_a_missing_setting_fails_the_cold_start_with_its_name(aws, monkeypatch):
    import pytest

    from devstack.lambda_runtime import InitError, load_handler_copy
    from sendline import config
    from tests.integration.conftest import ROOT

    monkeypatch.delenv("SENDS_QUEUE_URL")
    config.reset()
    with pytest.raises(InitError) as failed:
        load_handler_copy(ROOT / "functions" / "lead_submit" / "handler.py", "cold_start_without_queue")
    assert "SENDS_QUEUE_URL" in str(failed.value)
