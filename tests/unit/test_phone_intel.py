"""The phone validation adapters against recorded provider answers, and the screening rule."""

from __future__ import annotations

import base64

import httpx
import pytest
import respx

from sendline.adapters.phone_intel import (
    ActivityScoreLookup,
    LookupFailed,
    PhoneIntel,
    TwilioLineTypeLookup,
    normalise_line_type,
)
from sendline.domain.validation_rules import screen

PHONE = "+12069735100"
MASKED = "+1206***5100"
SCORE_BASE = "https://phone-intel.test"
TWILIO_BASE = "https://lookups.twilio.test"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "f" * 32
API_KEY = "key-for-tests"


def phone_intel_answer(**overrides):
    """The documented Phone Validation API 3.0 answer."""
    return {
        "id": "Phone.3dbb6fef-a2df-4b08-cfe3-bc7128b6f5b4",
        "phone_number": "2069735100",
        "is_valid": True,
        "activity_score": 57,
        "country_calling_code": "1",
        "country_code": "US",
        "country_name": "United States",
        "line_type": "NonFixedVOIP",
        "carrier": "Level 3 Communications, LLC",
        "is_prepaid": False,
        "error": None,
        "warnings": [],
        **overrides,
    }


def lookup_v2_answer(line_type_intelligence=None, line_status=None, **overrides):
    """The documented Lookup v2 answer: base fields, every package null unless asked for."""
    return {
        "calling_country_code": "1",
        "country_code": "US",
        "phone_number": PHONE,
        "national_format": "(206) 973-5100",
        "valid": True,
        "validation_errors": [],
        "caller_name": None,
        "sim_swap": None,
        "call_forwarding": None,
        "line_status": line_status,
        "line_type_intelligence": line_type_intelligence,
        "identity_match": None,
        "reassigned_number": None,
        "sms_pumping_risk": None,
        "phone_number_quality_score": None,
        "pre_fill": None,
        "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{PHONE}",
        **overrides,
    }


MOBILE = {
    "error_code": None,
    "mobile_country_code": "310",
    "mobile_network_code": "410",
    "carrier_name": "AT&T Wireless",
    "type": "mobile",
}


@pytest.fixture
def client():
    with httpx.Client(timeout=2.0) as http:
        yield http


@pytest.fixture
def score_api():
    with respx.mock(base_url=SCORE_BASE, assert_all_called=True) as mock:
        yield mock.get("/3.0/phone_intel")


@pytest.fixture
def lookup_api():
    with respx.mock(base_url=TWILIO_BASE, assert_all_called=True) as mock:
        yield mock.get(f"/v2/PhoneNumbers/{PHONE}")


def score_lookup(client):
    return ActivityScoreLookup(client, SCORE_BASE + "/", API_KEY)


def twilio_lookup(client, with_line_status=False):
    return TwilioLineTypeLookup(
        client, TWILIO_BASE, ACCOUNT_SID, AUTH_TOKEN, with_line_status=with_line_status
    )


def failure(lookup, phone=PHONE) -> LookupFailed:
    with pytest.raises(LookupFailed) as raised:
        lookup.lookup(phone)
    assert phone not in str(raised.value)
    assert phone[1:] not in raised.value.reason
    return raised.value


# --- the activity score API ---------------------------------------------------------------------


def test_activity_score_lookup_reads_the_documented_answer(client, score_api):
    # Given the provider's documented answer
    score_api.respond(200, json=phone_intel_answer())

    # When a number is looked up
    intel = score_lookup(client).lookup(PHONE)

    # Then every field is read, the line type in our words
    assert intel == PhoneIntel(
        phone=PHONE,
        valid=True,
        activity_score=57,
        line_type="voip",
        carrier="Level 3 Communications, LLC",
        provider="activity_score_api",
    )
    # And the request is the documented one
    request = score_api.calls.last.request
    assert request.url.path == "/3.0/phone_intel"
    assert dict(request.url.params) == {"phone": PHONE, "phone.country_hint": "US"}
    assert request.headers["x-api-key"] == API_KEY


def test_an_invalid_number_without_a_score_is_read_as_such(client, score_api):
    score_api.respond(
        200,
        json=phone_intel_answer(
            is_valid=False, activity_score=None, line_type=None, carrier=None, warnings=["Invalid"]
        ),
    )

    intel = score_lookup(client).lookup(PHONE)

    assert intel == PhoneIntel(PHONE, False, None, None, None, "activity_score_api")


@pytest.mark.parametrize(
    ("status", "body", "retryable", "reason"),
    [
        (401, {"error": {"name": "NotAuthorized", "message": "missing x-api-key header"}}, False,
         "HTTP 401: missing x-api-key header"),
        (403, {"message": "Forbidden"}, False, "HTTP 403: Forbidden"),
        (400, {"error": {"name": "MissingInput", "message": "phone is required"}}, False,
         "HTTP 400: phone is required"),
        (404, None, False, "HTTP 404: Not Found"),
        (429, {"message": "Too Many Requests"}, True, "HTTP 429: Too Many Requests"),
        (500, None, True, "HTTP 500: Internal Server Error"),
        (503, {"message": "Service Unavailable"}, True, "HTTP 503: Service Unavailable"),
    ],
)
def test_activity_score_refusals_say_whether_to_retry(
    client, score_api, status, body, retryable, reason
):
    score_api.respond(status, json=body)

    failed = failure(score_lookup(client))

    assert (failed.reason, failed.retryable, failed.http_status) == (reason, retryable, status)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError("refused"), "transport error: ConnectError"),
        (httpx.ReadTimeout(f"timed out reading {PHONE}"), "transport error: ReadTimeout"),
        (httpx.ConnectTimeout("timed out"), "transport error: ConnectTimeout"),
    ],
)
def test_transport_errors_are_retryable_and_name_no_number(client, score_api, error, reason):
    score_api.mock(side_effect=error)

    failed = failure(score_lookup(client))

    assert (failed.reason, failed.retryable, failed.http_status) == (reason, True, None)


def test_a_garbled_body_is_retryable(client, score_api):
    score_api.respond(200, text="<html>gateway</html>")

    failed = failure(score_lookup(client))

    assert (failed.reason, failed.retryable) == ("malformed answer: not a JSON object", True)


def test_an_incomplete_answer_is_retryable_with_the_provider_message(client, score_api):
    # Given the documented InternalError, which comes with no validity
    score_api.respond(
        200,
        json=phone_intel_answer(
            is_valid=None,
            activity_score=None,
            error={"name": "InternalError", "message": "Could not retrieve entire response"},
        ),
    )

    failed = failure(score_lookup(client))

    assert failed.reason == "incomplete answer: Could not retrieve entire response"
    assert failed.retryable is True


@pytest.mark.parametrize("score", [101, -1, "80", 57.5, True])
def test_a_score_off_the_scale_is_a_malformed_answer(client, score_api, score):
    score_api.respond(200, json=phone_intel_answer(activity_score=score))

    failed = failure(score_lookup(client))

    assert failed.reason == "malformed answer: activity_score is not an integer from 0 to 100"
    assert failed.retryable is True


def test_a_provider_message_that_repeats_the_number_is_masked(client, score_api):
    score_api.respond(400, json={"error": {"name": "InvalidInput", "message": f"bad {PHONE}"}})

    failed = failure(score_lookup(client))

    assert failed.reason == f"HTTP 400: bad {MASKED}"


# --- Twilio Lookup v2 ---------------------------------------------------------------------------


def test_twilio_lookup_reads_line_type_intelligence_and_has_no_score(client, lookup_api):
    lookup_api.respond(200, json=lookup_v2_answer(line_type_intelligence=MOBILE))

    intel = twilio_lookup(client).lookup(PHONE)

    assert intel == PhoneIntel(
        phone=PHONE,
        valid=True,
        activity_score=None,
        line_type="mobile",
        carrier="AT&T Wireless",
        provider="twilio_lookup_v2",
    )
    request = lookup_api.calls.last.request
    assert dict(request.url.params) == {"Fields": "line_type_intelligence"}
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("status", "score"),
    [
        ("active", 80),
        ("reachable", 60),
        ("unknown", None),
        ("unreachable", 20),
        ("inactive", 5),
        ("Inactive", 5),
        ("something new", None),
    ],
)
def test_line_status_stands_in_for_the_activity_score(client, lookup_api, status, score):
    lookup_api.respond(
        200,
        json=lookup_v2_answer(
            line_type_intelligence=MOBILE, line_status={"status": status, "error_code": None}
        ),
    )

    intel = twilio_lookup(client, with_line_status=True).lookup(PHONE)

    assert intel.activity_score == score
    params = dict(lookup_api.calls.last.request.url.params)
    assert params == {"Fields": "line_type_intelligence,line_status"}


def test_a_landline_with_no_mobile_network(client, lookup_api):
    landline = {**MOBILE, "mobile_country_code": None, "mobile_network_code": None,
                "carrier_name": "Verizon", "type": "landline"}
    lookup_api.respond(200, json=lookup_v2_answer(line_type_intelligence=landline))

    intel = twilio_lookup(client).lookup(PHONE)

    assert intel == PhoneIntel(PHONE, True, None, "landline", "Verizon", "twilio_lookup_v2")


def test_an_invalid_number_has_no_packages(client, lookup_api):
    lookup_api.respond(
        200,
        json=lookup_v2_answer(valid=False, validation_errors=["TOO_SHORT"], country_code=None),
    )

    intel = twilio_lookup(client, with_line_status=True).lookup(PHONE)

    assert intel == PhoneIntel(PHONE, False, None, None, None, "twilio_lookup_v2")


def twilio_error(code, status, message):
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


@pytest.mark.parametrize(
    ("status", "body", "retryable", "reason"),
    [
        (404,
         twilio_error(20404, 404, f"The requested resource /PhoneNumbers/{PHONE} was not found"),
         False, f"HTTP 404: 20404 The requested resource /PhoneNumbers/{MASKED} was not found"),
        (401, twilio_error(20003, 401, "Authenticate"), False, "HTTP 401: 20003 Authenticate"),
        (403, twilio_error(20003, 403, "Authenticate"), False, "HTTP 403: 20003 Authenticate"),
        (400, twilio_error(60200, 400, "Invalid parameter"), False,
         "HTTP 400: 60200 Invalid parameter"),
        (429, twilio_error(20429, 429, "Too Many Requests"), True,
         "HTTP 429: 20429 Too Many Requests"),
        (500, twilio_error(20500, 500, "An internal server error has occurred"), True,
         "HTTP 500: 20500 An internal server error has occurred"),
        (502, None, True, "HTTP 502: Bad Gateway"),
    ],
)
def test_twilio_refusals_say_whether_to_retry(client, lookup_api, status, body, retryable, reason):
    lookup_api.respond(status, json=body)

    failed = failure(twilio_lookup(client))

    assert (failed.reason, failed.retryable, failed.http_status) == (reason, retryable, status)


def test_twilio_transport_error_and_garbled_bodies_are_retryable(client, lookup_api):
    lookup_api.side_effect = [
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, text="{not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json=lookup_v2_answer(valid="yes")),
        httpx.Response(200, json=lookup_v2_answer(line_type_intelligence="mobile")),
    ]
    lookup = twilio_lookup(client)

    reasons = []
    for _ in range(5):
        failed = failure(lookup)
        assert failed.retryable is True
        reasons.append(failed.reason)

    assert reasons == [
        "transport error: ReadTimeout",
        "malformed answer: not a JSON object",
        "malformed answer: not a JSON object",
        "malformed answer: no valid flag",
        "malformed answer: line_type_intelligence is not an object",
    ]


# --- line types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "ours"),
    [
        # the activity score API's words
        ("Mobile", "mobile"),
        ("Landline", "landline"),
        ("FixedVOIP", "voip"),
        ("NonFixedVOIP", "voip"),
        ("TollFree", "toll_free"),
        ("Premium", "premium"),
        ("Voicemail", "voicemail"),
        ("Unknown", "unknown"),
        # Twilio's
        ("landline", "landline"),
        ("mobile", "mobile"),
        ("fixedVoip", "voip"),
        ("nonFixedVoip", "voip"),
        ("personal", "personal"),
        ("tollFree", "toll_free"),
        ("premium", "premium"),
        ("sharedCost", "shared_cost"),
        ("uan", "uan"),
        ("voicemail", "voicemail"),
        ("pager", "pager"),
        ("unknown", "unknown"),
        # neither
        ("Satellite", "unknown"),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_line_types_are_normalised(given, ours):
    assert normalise_line_type(given) == ours


# --- screening ----------------------------------------------------------------------------------


def intel(valid=True, score=80, line_type="mobile"):
    return PhoneIntel(PHONE, valid, score, line_type, "AT&T", "activity_score_api")


@pytest.mark.parametrize(
    ("given", "min_score", "reason"),
    [
        (intel(), 50, None),
        (intel(score=50), 50, None),
        (intel(score=49), 50, "low_activity_score"),
        (intel(score=0), 1, "low_activity_score"),
        (intel(score=0), 0, None),
        (intel(score=None), 100, None),
        (intel(line_type="voip", score=70), 70, None),
        (intel(line_type=None), 50, None),
        (intel(line_type="landline", score=100), 0, "landline"),
        (intel(line_type="landline", score=10), 50, "landline"),
        (intel(valid=False, score=None, line_type=None), 50, "invalid_number"),
        (intel(valid=False, score=10, line_type="landline"), 50, "invalid_number"),
    ],
)
def test_screen_gives_the_first_reason_not_to_text(given, min_score, reason):
    assert screen(given, min_score) == reason
