"""Send windows on every path, through the real handlers and moto: a lead's first text, drips,
quick sends, the worker's last look, flows' and campaigns' own windows, and the account's
default rule for numbers without a state. Every handler's clock is set by each test."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import respx

from sendline import runtime
from sendline.adapters.queue import SendQueue, SendRequest
from sendline.services.dispatch import dispatch_tick
from sendline.services.sending import RetryLater, SendResult, send_message
from tests.integration.conftest import INTEGRATOR, OPERATOR
from tests.integration.test_campaigns import brand_with_numbers, campaign, contacts_csv, imported_list, launch, ok, worker
from tests.integration.test_lead_flow import MESSAGES_URL, make_flow, twilio_created

NEW_YORK = "+12125550142"  # federal window, 08:00-21:00 Eastern
FLORIDA = "+13055550142"  # 08:00-20:00 Eastern
TOLL_FREE = "+18005550142"  # no state: the account's default rule on both coasts
OUTSIDE = "outside_send_window"
WINDOW_REASON = "outside the recipient's send window (quiet hours); the text goes out when it opens"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


_sids = iter(range(1, 10_000))


def carrier_answer(request: httpx.Request) -> httpx.Response:
    return twilio_created("SM" + f"{next(_sids):032x}")


def submit(fns, flow_id, phone, **fields):
    result = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": phone, **fields})
    assert result.status == 200, result.body
    return result.body


def send_queued(fns):
    """Deliver everything on the sends queue to the worker; returns the bodies the carrier got."""
    with respx.mock(assert_all_called=False) as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=carrier_answer)
        fns.drain_sends()
    return [dict(httpx.QueryParams(call.request.content.decode()))["Body"] for call in route.calls]


def lead_messages(fns, lead_id):
    return fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body["messages"]


def message(fns, message_id):
    return ok(fns.http("GET", f"/v1/messages/{message_id}", headers=OPERATOR))


def flow_stats(fns, flow_id):
    flows = fns.http("GET", "/v1/flows", headers=OPERATOR).body["flows"]
    stats = next(f for f in flows if f["flow_id"] == flow_id)["stats"]
    return {k: stats[k] for k in ("sent", "drips_sent", "pending_drips")}


def tick(fns, daytime, moment):
    daytime["value"] = moment
    return fns.tick("drip_scheduler")


# -- drips -----------------------------------------------------------------------------------------
def test_a_drip_due_at_2am_local_fires_at_the_next_opening(fns, daytime):
    # Given a lead texted at 13:00 in New York, with a drip 13 hours later: 02:00 local
    flow_id = make_flow(fns, drips=[{"delay_minutes": 13 * 60, "message": "Still looking, {first_name}?"}])
    lead = submit(fns, flow_id, NEW_YORK, first_name="Ann")
    assert lead["sent"] is True
    assert send_queued(fns) == ["Hi Ann, call (888) 555-0123."]
    drip_id = f"{lead['lead_id']}-1"

    # When the scheduler finds it due at 02:00 (07:00 UTC)
    report = tick(fns, daytime, utc(2026, 12, 4, 7, 0))

    # Then it is not queued: it waits for 08:00 local, counted as a pending drip still
    assert (report["due"], report["deferred"], report["queued"]) == (1, 1, 0)
    waiting = message(fns, drip_id)
    assert (waiting["status"], waiting["due_at"], waiting["deferred_reason"]) == (
        "scheduled", "2026-12-04T13:00:00.000Z", OUTSIDE)
    assert send_queued(fns) == []
    assert flow_stats(fns, flow_id) == {"sent": 1, "drips_sent": 0, "pending_drips": 1}
    # Not a minute early
    assert tick(fns, daytime, utc(2026, 12, 4, 12, 59))["due"] == 0

    # And at the opening it goes, and is sent
    assert tick(fns, daytime, utc(2026, 12, 4, 13, 0))["queued"] == 1
    assert send_queued(fns) == ["Still looking, Ann?"]
    assert message(fns, drip_id)["status"] == "sent"
    assert flow_stats(fns, flow_id) == {"sent": 2, "drips_sent": 1, "pending_drips": 0}


# -- a lead's first text ---------------------------------------------------------------------------
def test_a_lead_submitted_at_22_00_local_gets_its_first_text_at_08_00(fns, daytime):
    flow_id = make_flow(fns)  # drips 1 and 2 minutes after the lead
    # Given 22:00 in New York (03:00 UTC)
    daytime["value"] = utc(2026, 12, 4, 3, 0)

    # When the lead arrives
    lead = submit(fns, flow_id, NEW_YORK, first_name="Bo")

    # Then the answer says it was not sent, why, and when it goes
    lead_id = lead["lead_id"]
    assert lead == {"success": True, "lead_id": lead_id, "sent": False, "tracking_id": f"{lead_id}-0",
                    "drips_queued": 2, "duplicate": False, "reason": WINDOW_REASON,
                    "due_at": "2026-12-04T13:00:00.000Z"}
    assert send_queued(fns) == []
    assert [(m["step"], m["status"], m["due_at"]) for m in lead_messages(fns, lead_id)] == [
        (0, "scheduled", "2026-12-04T13:00:00.000Z"),
        (1, "scheduled", "2026-12-04T03:01:00.000Z"),  # drips keep their own times...
        (2, "scheduled", "2026-12-04T03:02:00.000Z")]
    # A retry of the same submission gets the same answer
    again = submit(fns, flow_id, NEW_YORK, first_name="Bo")
    assert (again["lead_id"], again["duplicate"], again["sent"], again["due_at"]) == (
        lead_id, True, False, "2026-12-04T13:00:00.000Z")

    # ...and wait too when they come due at night
    report = tick(fns, daytime, utc(2026, 12, 4, 3, 5))
    assert (report["due"], report["deferred"], report["queued"]) == (2, 2, 0)

    # At 08:00 the first text goes first, then each drip on the next ticks
    report = tick(fns, daytime, utc(2026, 12, 4, 13, 0))
    assert (report["due"], report["queued"], report["behind_earlier_step"]) == (3, 1, 2)
    assert send_queued(fns) == ["Hi Bo, call (888) 555-0123."]
    assert tick(fns, daytime, utc(2026, 12, 4, 13, 1))["queued"] == 1
    assert send_queued(fns) == ["Bo, still there?"]
    assert tick(fns, daytime, utc(2026, 12, 4, 13, 2))["queued"] == 1
    assert send_queued(fns) == ["Last call: (888) 555-0123"]
    assert [m["status"] for m in lead_messages(fns, lead_id)] == ["sent", "sent", "sent"]
    assert flow_stats(fns, flow_id) == {"sent": 3, "drips_sent": 2, "pending_drips": 0}


# -- quick send --------------------------------------------------------------------------------------
def test_a_quick_send_at_night_waits_for_the_morning(fns, daytime):
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    daytime["value"] = utc(2026, 12, 4, 3, 0)  # 22:00 in New York

    sent = ok(fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
        "to": "(212) 555-0142", "brand_id": brand["brand_id"], "body": "Call {call_number}"}), 202)

    assert {k: sent[k] for k in ("status", "due_at", "deferred_reason", "to", "from")} == {
        "status": "scheduled", "due_at": "2026-12-04T13:00:00.000Z", "deferred_reason": OUTSIDE,
        "to": "+1212***0142", "from": "+12125550900"}
    assert send_queued(fns) == []
    shown = message(fns, sent["message_id"])
    assert (shown["status"], shown["due_at"], shown["deferred_reason"]) == (
        "scheduled", "2026-12-04T13:00:00.000Z", OUTSIDE)
    assert tick(fns, daytime, utc(2026, 12, 4, 12, 59))["due"] == 0
    assert tick(fns, daytime, utc(2026, 12, 4, 13, 0))["queued"] == 1
    assert send_queued(fns) == ["Call (888) 555-0123"]
    assert message(fns, sent["message_id"])["status"] == "sent"


# -- the worker's last look --------------------------------------------------------------------------
def test_the_worker_holds_a_text_that_reaches_it_after_the_window_closed(fns, daytime):
    # Given a Florida lead at 19:20 local, its first text sent, and its drip queued at 19:50
    flow_id = make_flow(fns, drips=[{"delay_minutes": 30, "message": "Still there?"}])
    daytime["value"] = utc(2026, 12, 4, 0, 20)
    lead = submit(fns, flow_id, FLORIDA)
    assert send_queued(fns) == ["Hi, call (888) 555-0123."]
    assert tick(fns, daytime, utc(2026, 12, 4, 0, 50))["queued"] == 1
    assert flow_stats(fns, flow_id) == {"sent": 1, "drips_sent": 0, "pending_drips": 0}

    # When the worker reaches it at 20:05, after Florida's 20:00
    daytime["value"] = utc(2026, 12, 4, 1, 5)
    sent = send_queued(fns)

    # Then it is not sent, not dropped: back to scheduled for 08:00, a pending drip again
    assert sent == []
    drip = message(fns, f"{lead['lead_id']}-1")
    assert (drip["status"], drip["due_at"], drip["deferred_reason"]) == (
        "scheduled", "2026-12-04T13:00:00.000Z", OUTSIDE)
    assert flow_stats(fns, flow_id) == {"sent": 1, "drips_sent": 0, "pending_drips": 1}
    assert tick(fns, daytime, utc(2026, 12, 4, 13, 0))["queued"] == 1
    assert send_queued(fns) == ["Still there?"]
    assert flow_stats(fns, flow_id) == {"sent": 2, "drips_sent": 1, "pending_drips": 0}


def test_the_worker_drops_a_stale_copy_of_a_text_already_waiting_for_its_window(fns, daytime):
    flow_id = make_flow(fns, drips=[])
    daytime["value"] = utc(2026, 12, 4, 3, 0)  # 22:00 New York: the first text waits for 08:00
    lead = submit(fns, flow_id, NEW_YORK)
    first_id = f"{lead['lead_id']}-0"
    with respx.mock(assert_all_called=False) as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=carrier_answer)
        result = send_message(runtime.records(), runtime.twilio(), SendRequest(first_id), utc(2026, 12, 4, 3, 1))
    assert (result, route.call_count) == (SendResult.NOT_DUE, 0)
    shown = message(fns, first_id)
    assert (shown["status"], shown["due_at"]) == ("scheduled", "2026-12-04T13:00:00.000Z")


def test_a_text_not_yet_marked_queued_is_looked_at_again_not_deferred_under_the_mark(fns, daytime):
    # Given a first text handed to the queue at 20:59:59 in New York and still `scheduled`
    # (the lead API marks it `queued` right after), read by a worker at 21:00:01
    flow_id = make_flow(fns, drips=[])
    daytime["value"] = utc(2026, 12, 4, 1, 59, 59)
    lead = submit(fns, flow_id, NEW_YORK)
    first_id = f"{lead['lead_id']}-0"
    records = runtime.records()
    real_get = records.get_message
    records.get_message = lambda msg_id: {**real_get(msg_id), "status": "scheduled"}

    # Then the worker writes nothing and asks to see it again shortly
    with pytest.raises(RetryLater) as retry:
        send_message(records, runtime.twilio(), SendRequest(first_id), utc(2026, 12, 4, 2, 0, 1))
    assert (retry.value.delay_s, retry.value.pacing) == (2, True)
    records.get_message = real_get
    assert message(fns, first_id)["status"] == "queued"

    # And, queued, it is deferred on the next look
    again = send_message(records, runtime.twilio(), SendRequest(first_id), utc(2026, 12, 4, 2, 0, 3))
    assert again == SendResult.DEFERRED
    shown = message(fns, first_id)
    assert (shown["status"], shown["due_at"], shown["deferred_reason"]) == (
        "scheduled", "2026-12-04T13:00:00.000Z", OUTSIDE)


# -- flows' own windows ------------------------------------------------------------------------------
def test_a_flows_narrower_window_holds_its_texts_until_it_opens(fns, daytime):
    flow_id = make_flow(fns, drips=[], send_window={"start": "10:00", "end": "16:00"})
    flow = ok(fns.http("GET", f"/v1/flows/{flow_id}", headers=OPERATOR))
    assert flow["send_window"] == {"start": "10:00", "end": "16:00"}
    daytime["value"] = utc(2026, 12, 3, 14, 0)  # 09:00 in New York: the state allows it, the flow not yet

    lead = submit(fns, flow_id, NEW_YORK)

    assert (lead["sent"], lead["due_at"]) == (False, "2026-12-03T15:00:00.000Z")
    assert tick(fns, daytime, utc(2026, 12, 3, 15, 0))["queued"] == 1
    assert len(send_queued(fns)) == 1


@pytest.mark.parametrize("window, field, reason", [
    ({"start": "18:00", "end": "09:00"}, "send_window", "start must be before end"),
    ({"start": "8am", "end": "20:00"}, "send_window.start",
     "string should match pattern '^([01]\\d|2[0-3]):[0-5]\\d$'"),
])
def test_a_flows_window_is_checked_like_a_campaigns(fns, window, field, reason):
    result = fns.http("POST", "/v1/flows", headers=OPERATOR, json_body={
        "name": "Night owls", "from_number": "+12125550100", "initial_message": "Hi", "send_window": window})
    assert (result.status, result.body["errors"]) == (422, [{"field": field, "reason": reason}])


# -- the account's default rule ------------------------------------------------------------------------
def test_the_default_rule_for_numbers_without_a_state_is_a_setting(fns, daytime):
    shown = ok(fns.http("GET", "/v1/settings", headers=OPERATOR))["send_windows"]
    assert shown == {"default_rule": {"start": "09:00", "end": "20:00", "sundays": False}}
    flow_id = make_flow(fns, drips=[])
    daytime["value"] = utc(2026, 12, 6, 18, 0)  # Sunday, 13:00 New York, 10:00 Los Angeles

    # By default a toll-free lead on a Sunday waits for Monday 09:00 on the west coast
    lead = submit(fns, flow_id, TOLL_FREE)
    assert (lead["sent"], lead["due_at"]) == (False, "2026-12-07T17:00:00.000Z")

    # A partial change keeps the rest of the rule
    changed = ok(fns.http("PATCH", "/v1/settings", headers=OPERATOR,
                          json_body={"send_windows": {"default_rule": {"sundays": True}}}))
    assert changed["send_windows"] == {"default_rule": {"start": "09:00", "end": "20:00", "sundays": True}}
    other_flow = make_flow(fns, drips=[])
    assert submit(fns, other_flow, TOLL_FREE)["sent"] is True

    # Never wider than the federal window
    wide = fns.http("PATCH", "/v1/settings", headers=OPERATOR,
                    json_body={"send_windows": {"default_rule": {"start": "07:00"}}})
    assert (wide.status, wide.body["errors"]) == (422, [
        {"field": "send_windows.default_rule", "reason": "must be within the federal window, 08:00-21:00"}])


# -- campaigns -------------------------------------------------------------------------------------------
def test_a_campaign_holds_each_contact_to_its_own_states_window(fns, daytime):
    # Given a campaign whose own window is the whole day, to a New York and a Florida contact
    brand = brand_with_numbers(fns)
    imported = imported_list(fns, contacts_csv([NEW_YORK, FLORIDA]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"],
                    send_window={"start": "00:00", "end": "24:00"})
    assert made["send_window_default_rule"] == {"start": "09:00", "end": "20:00", "sundays": False}
    launch(fns, made["campaign_id"])

    # When the dispatcher releases them at 20:30 Eastern
    report = dispatch_tick(runtime.records(), runtime.send_queue(), utc(2026, 12, 4, 1, 30))

    # Then New York (federal 21:00) is queued and Florida (20:00) waits for 08:00
    assert (report.deferred, report.released) == (1, {made["campaign_id"]: 2})
    texts = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/messages", headers=OPERATOR))["messages"]
    assert sorted((m["to_masked"], m["status"], m.get("deferred_reason")) for m in texts) == [
        ("+1212***0142", "queued", None), ("+1305***0142", "scheduled", OUTSIDE)]
    florida = runtime.records().get_message(next(m["message_id"] for m in texts if m["to_masked"] == "+1305***0142"))
    assert florida["due_at"] == "2026-12-04T13:00:00.000Z"
    progress = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}", headers=OPERATOR))["progress"]
    assert (progress["deferred"], progress["waiting"]) == (1, 1)


# -- texts a day (Florida, Oklahoma, Maryland: 3 in any 24 hours) ------------------------------------
def quick_send(fns, brand, to, body):
    return ok(fns.http("POST", "/v1/messages", headers=OPERATOR, json_body={
        "to": to, "brand_id": brand["brand_id"], "body": body}), 202)


def test_a_fourth_text_in_24_hours_to_a_florida_number_waits_until_the_first_is_a_day_old(fns, daytime):
    # Given three texts to a Florida number at 10:00, 11:00 and 12:00 Eastern
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    for hour, body in ((15, "one"), (16, "two"), (17, "three")):
        daytime["value"] = utc(2026, 12, 4, hour, 0)
        quick_send(fns, brand, FLORIDA, body)
        assert send_queued(fns) == [body]

    # When a fourth is sent at 13:00
    daytime["value"] = utc(2026, 12, 4, 18, 0)
    fourth = quick_send(fns, brand, FLORIDA, "four")

    # Then it waits until 10:00 the next day, when the first is 24 hours old
    assert send_queued(fns) == []
    shown = message(fns, fourth["message_id"])
    assert (shown["status"], shown["due_at"], shown["deferred_reason"]) == (
        "scheduled", "2026-12-05T15:00:00.000Z", "daily_cap")
    assert tick(fns, daytime, utc(2026, 12, 5, 14, 59))["due"] == 0
    assert tick(fns, daytime, utc(2026, 12, 5, 15, 0))["queued"] == 1
    assert send_queued(fns) == ["four"]
    # and a fifth right after waits for the second to be a day old
    fifth = quick_send(fns, brand, FLORIDA, "five")
    assert send_queued(fns) == []
    assert message(fns, fifth["message_id"])["due_at"] == "2026-12-05T16:00:00.000Z"


def test_numbers_in_states_without_a_daily_cap_take_every_text(fns, daytime):
    brand = brand_with_numbers(fns, numbers=("+12125550900",))
    sent = []
    for hour, body in enumerate(("one", "two", "three", "four", "five")):
        daytime["value"] = utc(2026, 12, 4, 15 + hour, 0)
        quick_send(fns, brand, NEW_YORK, body)
        sent += send_queued(fns)
    assert sent == ["one", "two", "three", "four", "five"]
    assert runtime.records().recent_sends(NEW_YORK) == ([], 0)


def test_every_path_counts_toward_the_cap_and_a_capped_campaign_text_waits_in_the_campaign(fns, daytime, monkeypatch):
    # SQS would hold each campaign text for its second of the minute: here they go at once.
    real_send = SendQueue.send
    monkeypatch.setattr(SendQueue, "send", lambda self, requests, delay_s=0: real_send(self, requests, 0))
    # Given a Florida lead texted by its flow, then twice by quick send
    daytime["value"] = utc(2026, 12, 4, 15, 0)
    flow_id = make_flow(fns)
    submit(fns, flow_id, FLORIDA, first_name="Ann")
    brand = brand_with_numbers(fns)
    for body in ("two", "three"):
        quick_send(fns, brand, FLORIDA, body)
    assert len(send_queued(fns)) == 3
    # When a campaign reaches the same number and a New York one
    imported = imported_list(fns, contacts_csv([NEW_YORK, FLORIDA]))
    made = campaign(fns, imported["list"]["list_id"], brand["brand_id"])
    launch(fns, made["campaign_id"])
    dispatch_tick(runtime.records(), runtime.send_queue(), utc(2026, 12, 4, 16, 0))
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=carrier_answer)
        assert sorted(worker(fns, utc(2026, 12, 4, 16, 0))) == sorted([SendResult.SENT, SendResult.DEFERRED])
    assert [dict(httpx.QueryParams(c.request.content.decode()))["To"] for c in route.calls] == [NEW_YORK]

    # Then the Florida text waits among the campaign's deferred ones until 10:00 the next day
    texts = ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}/messages", headers=OPERATOR))["messages"]
    assert sorted((m["to_masked"], m["status"], m.get("deferred_reason")) for m in texts) == [
        ("+1212***0142", "sent", None), ("+1305***0142", "scheduled", "daily_cap")]
    florida = runtime.records().get_message(next(m["message_id"] for m in texts if m["to_masked"] == "+1305***0142"))
    assert florida["due_at"] == "2026-12-05T15:00:00.000Z"
    assert dispatch_tick(runtime.records(), runtime.send_queue(), utc(2026, 12, 5, 14, 59)).released == {}
    assert dispatch_tick(runtime.records(), runtime.send_queue(), utc(2026, 12, 5, 15, 0)).released == {
        made["campaign_id"]: 1}
    with respx.mock() as carrier:
        carrier.post(MESSAGES_URL).mock(side_effect=carrier_answer)
        assert worker(fns, utc(2026, 12, 5, 15, 0)) == [SendResult.SENT]
    assert ok(fns.http("GET", f"/v1/campaigns/{made['campaign_id']}", headers=OPERATOR))["progress"]["sent"] == 2


def test_two_texts_counted_against_one_stale_view_of_the_cap_do_not_both_go(fns):
    from sendline.errors import ConditionFailed

    records = runtime.records()
    records.note_recent_send(FLORIDA, [], 0, 1_796_400_000)
    # A worker that read the record before that text was counted cannot count its own on it.
    with pytest.raises(ConditionFailed):
        records.note_recent_send(FLORIDA, [], 0, 1_796_400_001)
    assert records.recent_sends(FLORIDA) == ([1_796_400_000], 1)
    records.note_recent_send(FLORIDA, [1_796_400_000], 1, 1_796_400_002)
    assert records.recent_sends(FLORIDA) == ([1_796_400_000, 1_796_400_002], 2)
