"""Inbound texts through the signed webhook: keywords and plain-language opt-outs, opt-ins, HELP,
brands' own keywords, replies stopping drips, the operator's listing and the consent record."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from twilio.request_validator import RequestValidator

from tests.integration.conftest import INTEGRATOR, OPERATOR, TWILIO_TOKEN, form
from tests.integration.test_lead_flow import make_flow

INBOUND_URL = "https://api.sendline.test/webhooks/twilio/inbound"
NOON = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # 13:00 in New York
LEAD_PHONE = "+12125550142"
FLOW_NUMBER = "+12125550100"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_sids = count(1)


def reply_twiml(text):
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>'


@pytest.fixture
def clock(fns, monkeypatch):
    """Every handler's clock, settable."""
    from sendline import http

    now = {"value": NOON}
    for name in ("dlr_webhook", "operator_api"):
        monkeypatch.setattr(fns.module(name), "utcnow", lambda: now["value"])
    monkeypatch.setattr(http, "utcnow", lambda: now["value"])  # lead submission
    return now


def text_in(fns, body, sender=LEAD_PHONE, to=FLOW_NUMBER, **extra):
    params = {"MessageSid": f"SM{next(_sids):032x}", "AccountSid": "AC" + "1" * 32, "From": sender, "To": to,
              "Body": body, "NumMedia": "0", "SmsStatus": "received", **extra}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(INBOUND_URL, params)
    result = fns.http("POST", "/webhooks/twilio/inbound", body=form(params),
                      headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})
    assert result.status == 200, result.body
    assert result.headers["content-type"] == "text/xml"
    return result.body, params


def dnc(fns, phone=LEAD_PHONE):
    return fns.http("GET", f"/v1/dnc/{phone}", headers=OPERATOR).body


def lead_with_drips(fns, **flow):
    flow_id = make_flow(fns, **flow)
    submitted = fns.http("POST", "/v1/leads", headers=INTEGRATOR,
                         json_body={"flow_id": flow_id, "phone": LEAD_PHONE, "first_name": "Ann",
                                    "page_url": "https://quotes.example/auto", "opt_in_text": "I agree to texts",
                                    "ip_address": "198.51.100.7", "trusted_form_url": "https://cert.trustedform.com/abc123",
                                    "jornaya_leadid": "LEAD-1234"},
                         )
    assert submitted.status == 200, submitted.body
    return flow_id, submitted.body["lead_id"]


def statuses(fns, lead_id):
    view = fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body
    return [(m["step"], m["status"], m.get("skip_reason")) for m in view["messages"]]


def last_inbound(fns):
    return fns.http("GET", "/v1/inbound?show_phones=true", headers=OPERATOR).body["inbound"][0]


# -- opt-out -------------------------------------------------------------------------------------
def test_stop_lists_the_number_cancels_its_drips_and_leaves_the_confirmation_to_the_carrier(fns, clock):
    _, lead_id = lead_with_drips(fns)
    answer, _ = text_in(fns, " stop ")
    assert answer == EMPTY  # Twilio's STOP filtering confirms and blocks the sender itself
    assert (dnc(fns)["dnc"], dnc(fns)["source"]) == (True, "keyword")
    # The first text, still in the queue, is skipped; the drips are cancelled.
    assert statuses(fns, lead_id) == [(0, "skipped", "opted_out"), (1, "cancelled", "opted_out"),
                                      (2, "cancelled", "opted_out")]
    record = last_inbound(fns)
    assert (record["keyword"], record["intent"], record["action"], record["reply"], record["drips_cancelled"]) == (
        "STOP", "opt_out", "opted_out", None, 3)


def test_a_plain_language_opt_out_gets_one_confirmation_and_a_second_gets_none(fns, clock):
    _, lead_id = lead_with_drips(fns)
    answer, _ = text_in(fns, "Please stop texting me")
    assert answer == reply_twiml("Sendline: You are unsubscribed and will receive no more messages. "
                                 "Reply START to resubscribe.")
    assert (dnc(fns)["source"], dnc(fns)["dnc"]) == ("phrase", True)
    assert statuses(fns, lead_id)[1:] == [(1, "cancelled", "opted_out"), (2, "cancelled", "opted_out")]
    again, _ = text_in(fns, "no more texts!!")
    assert again == EMPTY
    assert last_inbound(fns)["action"] == "already_opted_out"


@pytest.mark.parametrize("body, keyword", [("stop all", "STOP ALL"), ("Stop.", "STOP"), ("STOP please", "STOP"),
                                           ("Opt-out!", "OPT OUT")])
def test_opt_outs_the_carrier_does_not_take_as_its_keyword_are_confirmed_by_us(fns, clock, body, keyword):
    # Twilio filters only a body that is exactly its keyword; these reach only the platform.
    answer, _ = text_in(fns, body)
    assert answer == reply_twiml("Sendline: You are unsubscribed and will receive no more messages. "
                                 "Reply START to resubscribe.")
    assert (last_inbound(fns)["keyword"], dnc(fns)["dnc"]) == (keyword, True)


def test_advanced_opt_out_and_a_provider_without_filtering(fns, clock):
    # Twilio says it handled the keyword: silence, whatever the word.
    answer, _ = text_in(fns, "opt out", OptOutType="STOP")
    assert answer == EMPTY
    # A provider that does not filter STOP: the platform confirms it itself.
    fns.http("PATCH", "/v1/settings", headers=OPERATOR,
             json_body={"inbound": {"carrier_handles_standard_keywords": False}})
    answer, _ = text_in(fns, "STOP", sender="+12125550143")
    assert answer == reply_twiml("Sendline: You are unsubscribed and will receive no more messages. "
                                 "Reply START to resubscribe.")


@pytest.mark.parametrize("body", ["stop by tomorrow?", "I can't stop smiling", "Yes, what time?"])
def test_ordinary_replies_do_not_opt_out_but_stop_the_drips(fns, clock, body):
    _, lead_id = lead_with_drips(fns)
    answer, _ = text_in(fns, body)
    assert answer == EMPTY
    assert dnc(fns)["dnc"] is False
    assert statuses(fns, lead_id) == [(0, "queued", None), (1, "cancelled", "replied"), (2, "cancelled", "replied")]
    record = last_inbound(fns)
    assert (record["keyword"], record["intent"], record["action"], record["drips_cancelled"]) == (
        None, "none", "drips_stopped", 2)


def test_a_flow_can_keep_its_drips_after_a_reply(fns, clock):
    _, lead_id = lead_with_drips(fns, stop_drips_on_reply=False)
    text_in(fns, "who is this?")
    assert statuses(fns, lead_id) == [(0, "queued", None), (1, "scheduled", None), (2, "scheduled", None)]
    assert last_inbound(fns)["action"] == "none"


def test_a_reply_to_another_number_leaves_this_flows_drips(fns, clock):
    _, lead_id = lead_with_drips(fns)
    text_in(fns, "thanks", to="+13125550100")
    assert statuses(fns, lead_id)[1:] == [(1, "scheduled", None), (2, "scheduled", None)]


# -- opt-in ----------------------------------------------------------------------------------------
def test_start_after_stop_takes_the_number_off_the_list(fns, clock):
    text_in(fns, "STOP")
    answer, _ = text_in(fns, "start")
    assert answer == EMPTY  # the carrier confirms START too
    assert dnc(fns)["dnc"] is False
    assert last_inbound(fns)["action"] == "opted_in"


def test_yes_opts_in_only_a_number_that_opted_out_by_keyword(fns, clock):
    text_in(fns, "Yes")
    first = last_inbound(fns)
    assert (first["intent"], first["action"]) == ("none", "none")
    text_in(fns, "remove me from your list")
    answer, _ = text_in(fns, "YES")
    assert answer == EMPTY
    assert dnc(fns)["dnc"] is False


def test_start_does_not_clear_an_operators_entry(fns, clock):
    fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phones": [LEAD_PHONE]})
    fns.http("PATCH", "/v1/settings", headers=OPERATOR,
             json_body={"inbound": {"carrier_handles_standard_keywords": False}})
    answer, _ = text_in(fns, "START")
    assert answer == EMPTY
    assert dnc(fns)["dnc"] is True
    assert last_inbound(fns)["action"] == "opt_in_refused"


def test_start_is_confirmed_once_where_the_carrier_does_not(fns, clock):
    fns.http("PATCH", "/v1/settings", headers=OPERATOR,
             json_body={"inbound": {"carrier_handles_standard_keywords": False}})
    text_in(fns, "STOP")
    answer, _ = text_in(fns, "unstop")
    assert answer == reply_twiml("Sendline: You are resubscribed. Reply HELP for help, STOP to opt out.")


# -- HELP and brands' keywords -----------------------------------------------------------------------
def brand_on_number(fns, **fields):
    brand = fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
        "name": "Acme Auto", "call_number": "8885550123", **fields})
    assert brand.status == 201, brand.body
    added = fns.http("POST", "/v1/numbers", headers=OPERATOR,
                     json_body={"number": FLOW_NUMBER, "brand_id": brand.body["brand_id"]})
    assert added.status == 201, added.body
    return brand.body


def test_help_answers_with_the_brands_help_text(fns, clock):
    brand_on_number(fns, help_text="Acme Auto: quotes at 888-555-0123 or acme.example/help. Reply STOP to opt out.")
    answer, _ = text_in(fns, "help!")
    assert answer == reply_twiml("Acme Auto: quotes at 888-555-0123 or acme.example/help. Reply STOP to opt out.")
    assert last_inbound(fns)["action"] == "help_sent"


def test_help_without_help_text_names_the_brand_and_its_number(fns, clock):
    brand_on_number(fns)
    answer, _ = text_in(fns, "INFO")
    assert answer == reply_twiml("Acme Auto: Call (888) 555-0123. Msg &amp; data rates may apply. "
                                 "Reply STOP to opt out.")


def test_brand_keywords_reply_tag_and_forward_as_a_lead(fns, clock):
    flow_id = make_flow(fns, drips=[])
    brand = brand_on_number(fns, keywords=[
        {"keyword": "quote", "action": "forward_lead", "flow_id": flow_id, "reply": "Thanks! A quote is on its way."},
        {"keyword": "Hours", "action": "auto_reply", "reply": "Open 9-5 Mon-Fri."},
        {"keyword": "VIP", "action": "tag", "tag": "vip"},
    ])
    assert [k["keyword"] for k in brand["keywords"]] == ["QUOTE", "HOURS", "VIP"]
    answer, _ = text_in(fns, "hours?")
    assert answer == reply_twiml("Open 9-5 Mon-Fri.")
    answer, _ = text_in(fns, "Quote", sender="+12125550177")
    assert answer == reply_twiml("Thanks! A quote is on its way.")
    forwarded = last_inbound(fns)
    assert forwarded["action"].startswith("forwarded:ld_")
    lead_id = forwarded["action"].split(":", 1)[1]
    lead = fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body
    assert (lead["phone"], lead["source"], lead["consent"]["opt_in_text"]) == ("+12125550177", "keyword QUOTE", "Quote")
    text_in(fns, "vip", sender="+12125550177")
    lead = fns.http("GET", f"/v1/leads/{lead_id}", headers=OPERATOR).body
    assert lead["tags"] == ["vip"]


def test_a_brand_cannot_take_a_reserved_keyword(fns, clock):
    result = fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
        "name": "x", "keywords": [{"keyword": "Stop", "action": "auto_reply", "reply": "hi"}]})
    assert result.status == 422
    assert result.body["errors"] == [{"field": "keywords.0.keyword",
                                      "reason": "is reserved for opt-out, opt-in and help: STOP"}]
    result = fns.http("POST", "/v1/brands", headers=OPERATOR, json_body={
        "name": "x", "keywords": [{"keyword": "JOIN", "action": "forward_lead"}]})
    assert result.body["errors"] == [{"field": "keywords.0", "reason": "the forward_lead action needs flow_id"}]


# -- the webhook itself ------------------------------------------------------------------------------
def posted_twice(fns, sid_digit, sender, body):
    """The carrier posts one inbound text, then retries the same webhook; both answers."""
    params = {"MessageSid": "SM" + sid_digit * 32, "AccountSid": "AC" + "1" * 32, "From": sender, "To": FLOW_NUMBER,
              "Body": body, "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(INBOUND_URL, params)
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return [fns.http("POST", "/webhooks/twilio/inbound", body=form(params), headers=headers) for _ in range(2)]


def test_a_retried_webhook_acts_and_replies_once(fns, clock):
    first, second = posted_twice(fns, "7", "+12125550150", "wrong number")
    assert first.body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert second.body == EMPTY
    assert len(fns.http("GET", "/v1/inbound", headers=OPERATOR).body["inbound"]) == 1


def test_a_retried_ordinary_reply_is_answered_empty_not_with_an_error(fns, clock):
    # An ordinary reply matches no keyword; its stored record has none to show on the retry.
    first, second = posted_twice(fns, "6", "+12125550151", "sounds good")
    assert (first.status, first.body) == (200, EMPTY)
    assert (second.status, second.body) == (200, EMPTY)
    assert [i["body"] for i in fns.http("GET", "/v1/inbound", headers=OPERATOR).body["inbound"]] == ["sounds good"]


def test_an_unsigned_inbound_is_refused(fns, clock):
    params = {"MessageSid": "SM" + "8" * 32, "From": LEAD_PHONE, "To": FLOW_NUMBER, "Body": "STOP"}
    result = fns.http("POST", "/webhooks/twilio/inbound", body=form(params),
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert result.status == 403
    assert dnc(fns)["dnc"] is False


# -- the operator's view -----------------------------------------------------------------------------
def test_listing_filters_pages_and_counts_by_number(fns, clock):
    brand = brand_on_number(fns)
    for body in ("STOP", "hello", "HELP"):
        text_in(fns, body)
    clock["value"] = NOON + timedelta(minutes=1)
    text_in(fns, "hi there", to="+13125550100", sender="+13125550142")
    listing = fns.http("GET", "/v1/inbound?limit=2", headers=OPERATOR).body
    assert [r["body"] for r in listing["inbound"]] == ["hi there", "HELP"]
    assert listing["inbound"][0]["from"] == "+1312***0142"
    rest = fns.http("GET", f"/v1/inbound?limit=2&cursor={listing['next_cursor']}", headers=OPERATOR).body
    assert [r["body"] for r in rest["inbound"]] == ["hello", "STOP"]
    assert rest["next_cursor"] is None
    by_keyword = fns.http("GET", "/v1/inbound?keyword=stop", headers=OPERATOR).body["inbound"]
    assert [r["body"] for r in by_keyword] == ["STOP"]
    by_intent = fns.http("GET", "/v1/inbound?keyword=help", headers=OPERATOR).body["inbound"]
    assert [r["body"] for r in by_intent] == ["HELP"]
    by_brand = fns.http("GET", f"/v1/inbound?brand_id={brand['brand_id']}", headers=OPERATOR).body["inbound"]
    assert len(by_brand) == 3
    by_number = fns.http("GET", "/v1/inbound?number=(312) 555-0100", headers=OPERATOR).body["inbound"]
    assert [r["body"] for r in by_number] == ["hi there"]
    counts = fns.http("GET", "/v1/inbound/by-number", headers=OPERATOR).body
    assert counts["numbers"] == [
        {"number": FLOW_NUMBER, "brand_id": brand["brand_id"], "received": 3, "opt_outs": 1, "opt_ins": 0,
         "help": 1, "other": 1},
        {"number": "+13125550100", "brand_id": None, "received": 1, "opt_outs": 0, "opt_ins": 0, "help": 0,
         "other": 1},
    ]
    assert counts["complete"] is True
    none_yesterday = fns.http("GET", "/v1/inbound?since=2026-12-01&until=2026-12-02", headers=OPERATOR).body
    assert none_yesterday["inbound"] == []


def test_listing_rejects_bad_filters_naming_them(fns, clock):
    bad = fns.http("GET", "/v1/inbound?since=yesterday", headers=OPERATOR)
    assert (bad.status, bad.body["errors"]) == (422, [{"field": "since",
                                                        "reason": "must be a date (2026-12-01) or an ISO time"}])
    bad = fns.http("GET", "/v1/inbound?cursor=nope", headers=OPERATOR)
    assert (bad.status, bad.body["errors"][0]["field"]) == (422, "cursor")
    wide = fns.http("GET", "/v1/inbound?since=2026-01-01&until=2026-12-01", headers=OPERATOR)
    assert (wide.status, wide.body["errors"]) == (422, [{"field": "since", "reason": "the range is at most 92 days"}])
    for target in ("/v1/inbound?number=abc", "/v1/inbound/by-number?number=abc"):
        bad = fns.http("GET", target, headers=OPERATOR)
        assert (bad.status, bad.body["errors"]) == (422, [{
            "field": "number", "reason": "must be a sending number or a short code (contains letters)"}]), target
    short_code = fns.http("GET", "/v1/inbound?number=55123", headers=OPERATOR)
    assert (short_code.status, short_code.body["inbound"]) == (200, [])


def test_the_consent_record_of_a_phone(fns, clock):
    _, lead_id = lead_with_drips(fns)
    clock["value"] = NOON + timedelta(minutes=5)
    text_in(fns, "=stop")  # punctuation aside, a STOP; the body is kept as it came
    record = fns.http("GET", f"/v1/consent/{LEAD_PHONE}", headers=OPERATOR).body
    assert record["phone"] == LEAD_PHONE and record["on_dnc"] is True
    (lead,) = record["leads"]
    assert (lead["lead_id"], lead["sending_number"], lead["created_at"]) == (lead_id, FLOW_NUMBER,
                                                                            "2026-12-03T18:00:00.000Z")
    consent = lead["consent"]
    assert (consent["api_key_id"], consent["page_url"], consent["opt_in_text"], consent["submitted_at"]) == (
        "key_" + consent["api_key_id"][4:], "https://quotes.example/auto", "I agree to texts",
        "2026-12-03T18:00:00.000Z")
    assert [(e["event"], e["keyword"], e["body"]) for e in record["opt_events"]] == [("opt_out", "STOP", "=stop")]
    exported = fns.http("GET", f"/v1/consent/{LEAD_PHONE}?format=csv", headers=OPERATOR)
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(exported.body)))
    assert [(r["record"], r["at"]) for r in rows] == [("consent", "2026-12-03T18:00:00.000Z"),
                                                      ("opt_out", "2026-12-03T18:05:00.000Z"),
                                                      ("dnc", "2026-12-03T18:05:00.000Z")]
    assert rows[1]["body"] == "'=stop"  # never a formula in a spreadsheet
    assert {k: rows[0][k] for k in ("request_ip", "user_agent", "consumer_ip", "page_url", "opt_in_text",
                                    "trusted_form_url", "jornaya_leadid")} == {
        "request_ip": "203.0.113.9", "user_agent": "pytest", "consumer_ip": "198.51.100.7",
        "page_url": "https://quotes.example/auto", "opt_in_text": "I agree to texts",
        "trusted_form_url": "https://cert.trustedform.com/abc123", "jornaya_leadid": "LEAD-1234"}
    assert fns.http("GET", "/v1/consent/not-a-phone", headers=OPERATOR).status == 422


def test_a_stop_texted_while_a_campaign_runs_wins_over_its_queued_text(fns, clock, monkeypatch):
    from urllib.parse import parse_qs

    import respx

    from sendline import runtime
    from sendline.services.dispatch import dispatch_tick
    from sendline.services.sending import SendResult
    from tests.integration.test_campaigns import MESSAGES_URL, NEW_YORK, created, launched, progress, worker

    from tests.integration.test_campaigns import delays

    delays.__wrapped__(monkeypatch)  # the campaign's texts reach the worker at once
    records, queue = runtime.records(), runtime.send_queue()
    made = launched(fns, phones=NEW_YORK[:2])
    assert dispatch_tick(records, queue, NOON).released == {made["campaign_id"]: 2}  # both texts are queued
    answer, _ = text_in(fns, "STOP", sender=NEW_YORK[0], to="+12125550900")
    assert answer == EMPTY
    with respx.mock() as carrier:
        route = carrier.post(MESSAGES_URL).mock(side_effect=created)
        assert sorted(worker(fns, NOON)) == sorted([SendResult.SENT, SendResult.SKIPPED])
    assert [parse_qs(c.request.content.decode())["To"][0] for c in route.calls] == [NEW_YORK[1]]
    assert progress(fns, made["campaign_id"])["progress"]["skipped_by_reason"] == {"opted_out": 1}


def test_a_reply_counts_against_the_last_text_for_thirty_days_of_the_replys_own_time(fns):
    # Given a phone's last text from a number, remembered when it went (a date far from today's)
    from sendline import runtime
    from sendline.adapters.records import message_key

    records = runtime.records()
    sent = datetime(2031, 3, 1, 15, 0, tzinfo=UTC)
    message = {"message_id": "ld_test-0", "to": "+12125550142", "from_number": "+12125550100"}
    pk, sk = message_key("ld_test-0")
    records.store.put({**message, "pk": pk, "sk": sk, "status": "delivered"})
    records.store.transact([records.last_text_op(message, sent)])

    # Then a reply within 30 days of it is linked to it, one after is not, whatever today is
    linked = records.last_text("+12125550142", "+12125550100", sent + timedelta(days=29, hours=23))
    assert linked is not None and linked["message_id"] == "ld_test-0"
    assert records.last_text("+12125550142", "+12125550100", sent + timedelta(days=30, seconds=1)) is None
