"""The carrier simulator's phone validation lookups over HTTP: both providers' shapes, their
refusals, the adapters that read them, and scores that predict the simulator's own outcomes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import phonenumbers
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from devstack.carrier_sim import DEFAULT_LOOKUP_API_KEY, CarrierSimulator, SimulatorSettings
from sendline.adapters.phone_intel import (
    ActivityScoreLookup,
    LookupFailed,
    PhoneIntel,
    TwilioLineTypeLookup,
)
from sendline.domain.validation_rules import screen

SENDER = "+12125550100"
# Seed 42's fates for a few numbers (default carriers):
ACTIVE = "+14155550123"  # AT&T, delivered, score 98
INACTIVE = "+14155550006"  # T-Mobile, undelivered 30003, score 12
LANDLINE = "+13125550112"  # T-Mobile, a landline that scores 76
QUICK = {"callback_delay_s": (0.0, 0.0), "sender_mps": None}
ALWAYS_DELIVERED = {"TestNet": {"delivered": 1.0}}
AREAS = ("212", "312", "415", "602", "907", "808", "787", "305")


@pytest.fixture
def start_sim() -> Iterator[Any]:
    started: list[CarrierSimulator] = []

    def start(**overrides: Any) -> CarrierSimulator:
        sim = CarrierSimulator(SimulatorSettings(**{**QUICK, **overrides}))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def phone_intel(sim: CarrierSimulator, key: str | None = DEFAULT_LOOKUP_API_KEY, **params: str):
    headers = {"x-api-key": key} if key is not None else {}
    return httpx.get(f"{sim.url}/3.0/phone_intel", params=params, headers=headers)


def lookup_v2(sim: CarrierSimulator, number: str, fields: str | None = None, auth=None):
    params = {"Fields": fields} if fields is not None else {}
    credentials = auth or (sim.settings.account_sid, sim.settings.auth_token)
    return httpx.get(f"{sim.url}/v2/PhoneNumbers/{number}", params=params, auth=credentials)


def send(
    sim: CarrierSimulator, to: str, body: str = "Your quote is ready", http: Any = httpx
) -> None:
    response = http.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.settings.account_sid}/Messages.json",
        data={"To": to, "From": SENDER, "Body": body},
        auth=(sim.settings.account_sid, sim.settings.auth_token),
    )
    assert response.status_code == 201, response.text


def outcomes(sim: CarrierSimulator) -> list[tuple[str, str, int | None]]:
    assert sim.wait_until_idle()
    return [(m["to"], m["status"], m["error_code"]) for m in sim.messages()]


# --- the activity score API ---------------------------------------------------------------------


def test_phone_intel_answers_in_the_documented_shape(start_sim):
    sim = start_sim()

    response = phone_intel(sim, phone=ACTIVE, **{"phone.country_hint": "US"})

    assert response.status_code == 200
    answer = response.json()
    assert re.fullmatch(r"Phone\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        answer.pop("id"))
    assert answer == {
        "phone_number": ACTIVE,
        "is_valid": True,
        "activity_score": 98,
        "country_calling_code": "1",
        "country_code": "US",
        "country_name": "United States",
        "line_type": "Mobile",
        "carrier": "AT&T",
        "is_prepaid": False,
        "error": None,
        "warnings": [],
    }


def test_phone_intel_is_the_same_for_every_way_of_writing_the_number(start_sim):
    sim = start_sim()

    answers = [
        phone_intel(sim, phone=written, **{"phone.country_hint": "US"}).json()
        for written in (ACTIVE, "4155550123", "(415) 555-0123")
    ]

    assert answers[0] == answers[1] == answers[2]


def test_phone_intel_for_a_landline_and_an_invalid_number(start_sim):
    sim = start_sim()

    landline = phone_intel(sim, phone=LANDLINE).json()
    invalid = phone_intel(sim, phone="+1415555").json()

    assert (landline["line_type"], landline["activity_score"], landline["is_prepaid"]) == (
        "Landline", 76, None)
    assert invalid == {
        "id": None,
        "phone_number": "+1415555",
        "is_valid": False,
        "activity_score": None,
        "country_calling_code": "1",
        "country_code": None,
        "country_name": None,
        "line_type": None,
        "carrier": None,
        "is_prepaid": None,
        "error": None,
        "warnings": ["Invalid Input"],
    }


@pytest.mark.parametrize(
    ("key", "params", "status", "error"),
    [
        (None, {"phone": ACTIVE}, 401,
         {"name": "NotAuthorized", "message": "missing x-api-key header"}),
        ("wrong-key", {"phone": ACTIVE}, 401,
         {"name": "NotAuthorized", "message": "invalid API key"}),
        (DEFAULT_LOOKUP_API_KEY, {}, 400, {"name": "MissingInput", "message": "phone is required"}),
        (DEFAULT_LOOKUP_API_KEY, {"phone": " "}, 400,
         {"name": "MissingInput", "message": "phone is required"}),
    ],
)
def test_phone_intel_refusals(start_sim, key, params, status, error):
    sim = start_sim()

    response = phone_intel(sim, key, **params)

    assert (response.status_code, response.json()) == (status, {"error": error})
    assert sim.stats()["lookups"] == {"phone_intel": 0, "lookup_v2": 0}


def test_the_lookup_key_is_a_setting(start_sim):
    sim = start_sim(lookup_api_key="rotated")

    assert phone_intel(sim, phone=ACTIVE).status_code == 401
    assert phone_intel(sim, "rotated", phone=ACTIVE).status_code == 200
    assert sim.stats()["auth_failures"] == 1


# --- Twilio Lookup v2 ---------------------------------------------------------------------------


def test_lookup_v2_fills_only_the_packages_asked_for(start_sim):
    sim = start_sim()

    bare = lookup_v2(sim, ACTIVE).json()
    line_type = lookup_v2(sim, ACTIVE, "line_type_intelligence").json()
    both = lookup_v2(sim, ACTIVE, "line_type_intelligence,line_status").json()

    base = {
        "calling_country_code": "1",
        "country_code": "US",
        "phone_number": ACTIVE,
        "national_format": "(415) 555-0123",
        "valid": True,
        "validation_errors": [],
        "caller_name": None,
        "sim_swap": None,
        "call_forwarding": None,
        "line_status": None,
        "line_type_intelligence": None,
        "identity_match": None,
        "reassigned_number": None,
        "sms_pumping_risk": None,
        "phone_number_quality_score": None,
        "pre_fill": None,
        "url": f"{sim.url}/v2/PhoneNumbers/{ACTIVE}",
    }
    intelligence = {
        "error_code": None,
        "mobile_country_code": "310",
        "mobile_network_code": "410",
        "carrier_name": "AT&T",
        "type": "mobile",
    }
    assert bare == base
    assert line_type == {**base, "line_type_intelligence": intelligence}
    assert both == {
        **base,
        "line_type_intelligence": intelligence,
        "line_status": {"status": "active", "error_code": None},
    }
    assert sim.stats()["lookups"] == {"phone_intel": 0, "lookup_v2": 3}


def test_lookup_v2_for_a_landline_and_an_inactive_mobile(start_sim):
    sim = start_sim()
    fields = "line_type_intelligence,line_status"

    landline = lookup_v2(sim, LANDLINE, fields).json()
    inactive = lookup_v2(sim, INACTIVE, fields).json()

    assert landline["line_type_intelligence"] == {
        "error_code": None,
        "mobile_country_code": None,
        "mobile_network_code": None,
        "carrier_name": "T-Mobile",
        "type": "landline",
    }
    assert landline["line_status"] == {"status": "unknown", "error_code": None}
    assert inactive["line_type_intelligence"]["type"] == "mobile"
    assert inactive["line_status"] == {"status": "unreachable", "error_code": None}


def test_lookup_v2_invalid_and_unparsable_numbers(start_sim):
    sim = start_sim()

    invalid = lookup_v2(sim, "+1415", "line_type_intelligence")
    unparsable = lookup_v2(sim, "not-a-number", "line_type_intelligence")

    shown = ("valid", "validation_errors", "line_type_intelligence")
    assert invalid.status_code == 200
    assert {k: invalid.json()[k] for k in shown} == {
        "valid": False, "validation_errors": ["TOO_SHORT"], "line_type_intelligence": None}
    assert unparsable.status_code == 404
    assert unparsable.json() == {
        "code": 20404,
        "message": "The requested resource /PhoneNumbers/not-a-number was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_lookup_v2_wrong_credentials_get_401_20003(start_sim):
    sim = start_sim()
    wrong = (sim.settings.account_sid, "0" * 32)

    response = lookup_v2(sim, ACTIVE, "line_type_intelligence", auth=wrong)

    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert sim.stats()["lookups"]["lookup_v2"] == 0


def test_the_official_client_reads_lookup_v2(start_sim):
    sim = start_sim()
    client = Client(sim.settings.account_sid, sim.settings.auth_token)
    client.lookups.base_url = sim.url

    number = client.lookups.v2.phone_numbers(LANDLINE).fetch(fields="line_type_intelligence")

    assert (number.valid, number.phone_number, number.national_format) == (
        True, LANDLINE, "(312) 555-0112")
    assert number.line_type_intelligence["type"] == "landline"
    with pytest.raises(TwilioRestException) as missing:
        client.lookups.v2.phone_numbers("abc").fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_stats_count_lookups_per_api_and_reset_forgets_them(start_sim):
    sim = start_sim()
    phone_intel(sim, phone=ACTIVE)
    phone_intel(sim, phone=INACTIVE)
    lookup_v2(sim, ACTIVE, "line_type_intelligence")

    before = httpx.get(f"{sim.url}/_sim/stats").json()["lookups"]
    httpx.post(f"{sim.url}/_sim/reset")
    after = httpx.get(f"{sim.url}/_sim/stats").json()["lookups"]

    assert before == {"phone_intel": 2, "lookup_v2": 1}
    assert after == {"phone_intel": 0, "lookup_v2": 0}


# --- the adapters against the simulator -------------------------------------------------------


def test_the_activity_score_adapter_reads_the_simulator(start_sim, http):
    sim = start_sim()
    lookup = ActivityScoreLookup(http, sim.url, DEFAULT_LOOKUP_API_KEY)

    found = [lookup.lookup(number) for number in (ACTIVE, INACTIVE, LANDLINE)]

    assert found == [
        PhoneIntel(ACTIVE, True, 98, "mobile", "AT&T", "activity_score_api"),
        PhoneIntel(INACTIVE, True, 12, "mobile", "T-Mobile", "activity_score_api"),
        PhoneIntel(LANDLINE, True, 76, "landline", "T-Mobile", "activity_score_api"),
    ]
    assert [screen(intel, 50) for intel in found] == [None, "low_activity_score", "landline"]


def test_the_twilio_adapter_reads_the_simulator(start_sim, http):
    sim = start_sim()
    args = (http, sim.url, sim.settings.account_sid, sim.settings.auth_token)

    line_type_only = TwilioLineTypeLookup(*args).lookup(ACTIVE)
    with_status = [
        TwilioLineTypeLookup(*args, with_line_status=True).lookup(number)
        for number in (ACTIVE, INACTIVE, LANDLINE)
    ]

    assert line_type_only == PhoneIntel(ACTIVE, True, None, "mobile", "AT&T", "twilio_lookup_v2")
    assert with_status == [
        PhoneIntel(ACTIVE, True, 80, "mobile", "AT&T", "twilio_lookup_v2"),
        PhoneIntel(INACTIVE, True, 20, "mobile", "T-Mobile", "twilio_lookup_v2"),
        PhoneIntel(LANDLINE, True, None, "landline", "T-Mobile", "twilio_lookup_v2"),
    ]


def test_the_adapters_report_the_simulators_refusals(start_sim, http):
    sim = start_sim()

    with pytest.raises(LookupFailed) as bad_key:
        ActivityScoreLookup(http, sim.url, "wrong-key").lookup(ACTIVE)
    with pytest.raises(LookupFailed) as bad_token:
        TwilioLineTypeLookup(http, sim.url, sim.settings.account_sid, "0" * 32).lookup(ACTIVE)
    with pytest.raises(LookupFailed) as unparsable:
        TwilioLineTypeLookup(
            http, sim.url, sim.settings.account_sid, sim.settings.auth_token
        ).lookup("not-a-number")

    assert (bad_key.value.reason, bad_key.value.retryable) == ("HTTP 401: invalid API key", False)
    assert (bad_token.value.reason, bad_token.value.retryable) == (
        "HTTP 401: 20003 Authenticate", False)
    assert (unparsable.value.http_status, unparsable.value.retryable) == (404, False)


def test_a_stopped_simulator_is_a_retryable_failure(start_sim, http):
    sim = start_sim()
    url = sim.url
    sim.stop()

    with pytest.raises(LookupFailed) as refused:
        ActivityScoreLookup(http, url, DEFAULT_LOOKUP_API_KEY).lookup(ACTIVE)

    assert (refused.value.reason, refused.value.retryable) == (
        "transport error: ConnectError", True)


# --- outcomes follow the numbers' fates ---------------------------------------------------------


def test_every_send_to_a_number_meets_its_fate(start_sim):
    sim = start_sim()

    for body in ("first", "second"):
        for number in (ACTIVE, INACTIVE, LANDLINE):
            send(sim, number, body)

    assert Counter(outcomes(sim)) == {
        (ACTIVE, "delivered", None): 2,
        (INACTIVE, "undelivered", 30003): 2,
        (LANDLINE, "undelivered", 30006): 2,
    }


def test_without_outcomes_following_scores_a_landline_is_delivered_as_before(start_sim):
    follows = start_sim(carriers=ALWAYS_DELIVERED)
    ignores = start_sim(carriers=ALWAYS_DELIVERED, outcomes_follow_score=False)

    send(follows, LANDLINE)
    send(ignores, LANDLINE)

    assert outcomes(follows) == [(LANDLINE, "undelivered", 30006)]
    assert outcomes(ignores) == [(LANDLINE, "delivered", None)]


def test_magic_numbers_keep_their_behaviour(start_sim):
    sim = start_sim(carriers={"TestNet": {"30005": 1.0}})

    send(sim, "+15005550006")
    refused = httpx.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.settings.account_sid}/Messages.json",
        data={"To": "+15005550009", "From": SENDER, "Body": "hi"},
        auth=(sim.settings.account_sid, sim.settings.auth_token),
    )

    assert outcomes(sim) == [("+15005550006", "delivered", None)]
    assert refused.json()["code"] == 21614
    assert phone_intel(sim, phone="+15005550006").json()["activity_score"] == 100
    assert phone_intel(sim, phone="+15005550009").json()["line_type"] == "Landline"


def test_the_landline_share_is_a_setting_and_changes_no_score(start_sim, http):
    numbers = [f"+1{AREAS[i % 8]}555{i // 8:04d}" for i in range(200)]
    default = start_sim()
    none = start_sim(landline_rate=0.0)

    def lookups(sim):
        lookup = ActivityScoreLookup(http, sim.url, DEFAULT_LOOKUP_API_KEY)
        return [lookup.lookup(number) for number in numbers]

    with_landlines, without = lookups(default), lookups(none)

    assert Counter(intel.line_type for intel in with_landlines) == {"mobile": 189, "landline": 11}
    assert {intel.line_type for intel in without} == {"mobile"}
    assert [i.activity_score for i in with_landlines] == [i.activity_score for i in without]


def test_scores_predict_the_simulators_own_delivery(start_sim, http):
    # Given 2,000 valid numbers and the simulator's defaults (seed 42, default carriers)
    numbers = [f"+1{AREAS[i % 8]}555{i // 8:04d}" for i in range(2000)]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    sim = start_sim()

    # When each is looked up, then texted
    lookup = ActivityScoreLookup(http, sim.url, DEFAULT_LOOKUP_API_KEY)
    intel = {number: lookup.lookup(number) for number in numbers}
    for number in numbers:
        send(sim, number, http=http)
    status = {to: outcome for to, outcome, _ in outcomes(sim)}

    def delivered(group: list[str]) -> tuple[int, int]:
        return sum(status[number] == "delivered" for number in group), len(group)

    high = [n for n in numbers if intel[n].activity_score >= 50]
    low = [n for n in numbers if intel[n].activity_score < 50]
    screened_in = [n for n in numbers if screen(intel[n], 50) is None]

    # Then numbers scoring 50 or more are delivered far more often than the rest
    assert delivered(high) == (1645, 1740)  # 94.5%
    assert delivered(low) == (154, 260)  # 59.2%
    assert delivered(high)[0] / len(high) > delivered(low)[0] / len(low)
    # And screening (score and line type) lifts the whole run's rate from 90.0% to 99.5%
    assert delivered(numbers) == (1799, 2000)
    assert delivered(screened_in) == (1645, 1654)
    assert Counter(screen(i, 50) for i in intel.values()) == {
        None: 1654, "low_activity_score": 249, "landline": 97}
    assert sim.stats()["by_status"] == {
        "delivered": 1799, "undelivered": 193, "failed": 5, "sent": 3}
    assert sim.stats()["lookups"] == {"phone_intel": 2000, "lookup_v2": 0}
