"""The carrier simulator, judged by the official `twilio` package: it must accept what the client
sends, answer what the client expects, and sign every webhook so `RequestValidator` accepts it."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from devstack.carrier_sim import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    CarrierSimulator,
    SimulatorSettings,
    twilio_signature,
)

REPO = Path(__file__).resolve().parents[2]
SENDER = "+15005550006"
RECIPIENT = "+14155550123"
FAST = {"callback_delay_s": (0.01, 0.03), "callback_retry_delay_s": 0.05, "sender_mps": None}
ALWAYS_DELIVERED = {"TestNet": {"delivered": 1.0}}


class Receiver:
    """A tiny webhook endpoint that records every POST and answers `status`."""

    def __init__(self, status: int = 200):
        self.status = status
        self.answer = b"<Response/>"
        self.requests: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                with receiver._cond:
                    receiver.requests.append(
                        {
                            "url": receiver.url + self.path,
                            "path": self.path.split("?")[0],
                            "params": {
                                k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()
                            },
                            "signature": self.headers.get("X-Twilio-Signature"),
                            "token": self.headers.get("I-Twilio-Idempotency-Token"),
                        }
                    )
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def on(self, path: str) -> list[dict[str, Any]]:
        with self._cond:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path: str, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len([r for r in self.requests if r["path"] == path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return self.on(path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def start_sim() -> Iterator[Any]:
    started: list[CarrierSimulator] = []

    def start(**overrides: Any) -> CarrierSimulator:
        sim = CarrierSimulator(SimulatorSettings(**{**FAST, **overrides}))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def client_for(sim: CarrierSimulator, auth_token: str | None = None) -> Client:
    client = Client(sim.settings.account_sid, auth_token or sim.settings.auth_token)
    client.api.base_url = sim.url
    return client


def statuses(requests: list[dict[str, Any]]) -> list[str]:
    return [r["params"]["MessageStatus"] for r in requests]


def assert_signed(requests: list[dict[str, Any]], auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
    validator = RequestValidator(auth_token)
    for request in requests:
        assert validator.validate(request["url"], request["params"], request["signature"]), request


# --- sending through the official client --------------------------------------------------------


def test_defaults_are_twilio_shaped():
    settings = SimulatorSettings()

    assert re.fullmatch(r"AC[0-9a-f]{32}", settings.account_sid)
    assert re.fullmatch(r"[0-9a-f]{32}", settings.auth_token)
    assert settings.account_sid == DEFAULT_ACCOUNT_SID
    for carrier, outcomes in settings.carriers.items():
        assert sum(outcomes.values()) == pytest.approx(1.0), carrier


def test_twilio_client_sends_a_two_segment_message(start_sim, receiver):
    sim = start_sim(carriers=ALWAYS_DELIVERED)
    client = client_for(sim)

    message = client.messages.create(
        to=RECIPIENT, from_=SENDER, body="a" * 161, status_callback=f"{receiver.url}/status"
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == sim.settings.account_sid
    assert (message.to, message.from_, message.body) == (RECIPIENT, SENDER, "a" * 161)
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.num_segments == "2"
    assert message.num_media == "0"
    assert (message.price, message.price_unit) == (None, "USD")
    assert (message.error_code, message.error_message) == (None, None)
    assert message.date_sent is None
    assert message.date_created is not None
    assert message.api_version == "2010-04-01"
    account = sim.settings.account_sid
    assert message.uri == f"/2010-04-01/Accounts/{account}/Messages/{message.sid}.json"


def test_ucs2_body_segments_are_counted_with_the_shared_encoder(start_sim):
    sim = start_sim()

    message = client_for(sim).messages.create(to=RECIPIENT, from_=SENDER, body="\U0001f44d" * 36)

    assert message.num_segments == "2"


def test_raw_response_is_201_with_the_twilio_error_fields_null(start_sim):
    sim = start_sim()
    url = f"{sim.url}/2010-04-01/Accounts/{sim.settings.account_sid}/Messages.json"

    response = httpx.post(
        url,
        data={"To": RECIPIENT, "From": SENDER, "Body": "hello"},
        auth=(sim.settings.account_sid, sim.settings.auth_token),
    )

    assert response.status_code == 201
    resource = response.json()
    assert resource["status"] == "queued"
    assert resource["num_segments"] == "1"
    assert resource["error_code"] is None and resource["price"] is None
    rfc_2822 = r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000"
    assert re.fullmatch(rfc_2822, resource["date_created"])


# --- status callbacks ---------------------------------------------------------------------------


def test_a_delivered_message_reports_exactly_sent_then_delivered(start_sim, receiver):
    # Given a carrier that delivers everything
    sim = start_sim(carriers=ALWAYS_DELIVERED)
    callback = f"{receiver.url}/status?tenant=acme"

    # When a message is sent with a status callback
    message = client_for(sim).messages.create(
        to=RECIPIENT, from_=SENDER, body="a" * 161, status_callback=callback
    )
    requests = receiver.wait_for("/status", 2)
    assert sim.wait_until_idle()

    # Then exactly two callbacks, each signed the way Twilio signs
    assert statuses(receiver.on("/status")) == ["sent", "delivered"]
    assert_signed(requests)
    sent, delivered = (r["params"] for r in requests)
    assert sent == {
        "AccountSid": sim.settings.account_sid,
        "ApiVersion": "2010-04-01",
        "From": SENDER,
        "MessageSid": message.sid,
        "MessageStatus": "sent",
        "SmsSid": message.sid,
        "SmsStatus": "sent",
        "To": RECIPIENT,
    }
    assert set(delivered) == set(sent) | {"RawDlrDoneDate"}
    assert re.fullmatch(r"\d{10}", delivered["RawDlrDoneDate"])
    assert requests[0]["url"] == callback

    # And the resource now shows the outcome and the price of two segments
    fetched = client_for(sim).messages(message.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.price == "-0.01580"
    assert fetched.date_sent is not None


def test_an_undelivered_message_carries_the_drawn_error_code(start_sim, receiver):
    sim = start_sim(carriers={"TestNet": {"30003": 1.0}})

    message = client_for(sim).messages.create(
        to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )
    requests = receiver.wait_for("/status", 2)

    assert statuses(requests) == ["sent", "undelivered"]
    assert "ErrorCode" not in requests[0]["params"]
    assert requests[1]["params"]["ErrorCode"] == "30003"
    assert "RawDlrDoneDate" in requests[1]["params"]
    assert_signed(requests)
    sim.wait_until_idle()
    fetched = client_for(sim).messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code, fetched.price) == ("undelivered", 30003, "-0.00790")


def test_a_failed_message_has_one_callback_and_no_price(start_sim, receiver):
    sim = start_sim(carriers={"TestNet": {"failed:30008": 1.0}})

    message = client_for(sim).messages.create(
        to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )
    requests = receiver.wait_for("/status", 1)
    assert sim.wait_until_idle()

    assert statuses(receiver.on("/status")) == ["failed"]
    assert requests[0]["params"]["ErrorCode"] == "30008"
    assert "RawDlrDoneDate" not in requests[0]["params"]
    fetched = client_for(sim).messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code, fetched.price) == ("failed", 30008, None)


def test_duplicates_post_every_callback_twice_identically(start_sim, receiver):
    sim = start_sim(carriers=ALWAYS_DELIVERED, duplicate_rate=1.0)

    client_for(sim).messages.create(
        to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )
    receiver.wait_for("/status", 4)
    assert sim.wait_until_idle()

    requests = receiver.on("/status")
    assert statuses(requests) == ["sent", "sent", "delivered", "delivered"]
    assert requests[0]["params"] == requests[1]["params"]
    assert requests[2]["params"] == requests[3]["params"]
    assert requests[2]["signature"] == requests[3]["signature"]
    assert requests[2]["token"] != requests[3]["token"]
    assert_signed(requests)


def test_out_of_order_posts_the_final_status_before_sent_and_never_regresses(start_sim, receiver):
    sim = start_sim(carriers=ALWAYS_DELIVERED, out_of_order_rate=1.0)

    message = client_for(sim).messages.create(
        to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )
    receiver.wait_for("/status", 2)
    assert sim.wait_until_idle()

    assert statuses(receiver.on("/status")) == ["delivered", "sent"]
    assert_signed(receiver.on("/status"))
    assert client_for(sim).messages(message.sid).fetch().status == "delivered"


def test_a_failing_callback_url_is_retried_then_dropped(start_sim):
    failing = Receiver(status=500)
    try:
        sim = start_sim(carriers=ALWAYS_DELIVERED, callback_retries=2)

        client_for(sim).messages.create(
            to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{failing.url}/status"
        )
        failing.wait_for("/status", 6)
        assert sim.wait_until_idle()

        # Three attempts for `sent`, then three for `delivered`: the chain goes on without it.
        assert statuses(failing.on("/status")) == ["sent"] * 3 + ["delivered"] * 3
        assert len({r["token"] for r in failing.on("/status")}) == 2
        callbacks = sim.messages()[0]["callbacks"]
        assert [(c["status"], c["attempts"], c["dropped"]) for c in callbacks] == [
            ("sent", 3, True),
            ("delivered", 3, True),
        ]
        assert sim.stats()["callbacks"] == {"posted": 0, "failed_attempts": 6, "dropped": 2}
    finally:
        failing.stop()


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "to", "code"),
    [
        ("+15005550001", RECIPIENT, 21212),
        ("+15005550007", RECIPIENT, 21606),
        ("+15005550008", RECIPIENT, 21611),
        (SENDER, "+15005550001", 21211),
        (SENDER, "+15005550002", 21612),
        (SENDER, "+15005550003", 21408),
        (SENDER, "+15005550004", 21610),
        (SENDER, "+15005550009", 21614),
    ],
)
def test_magic_numbers_give_their_codes(start_sim, from_, to, code):
    sim = start_sim()

    with pytest.raises(TwilioRestException) as refused:
        client_for(sim).messages.create(to=to, from_=from_, body="hi")

    assert (refused.value.status, refused.value.code) == (400, code)
    assert sim.stats()["rejected"] == {str(code): 1}
    assert sim.messages() == []


def test_the_magic_valid_number_is_delivered_whatever_the_carrier_does(start_sim, receiver):
    sim = start_sim(carriers={"TestNet": {"30005": 1.0}})

    client_for(sim).messages.create(
        to=SENDER, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )

    assert statuses(receiver.wait_for("/status", 2)) == ["sent", "delivered"]


@pytest.mark.parametrize(
    ("to", "body", "code"),
    [("4155550123", "hi", 21211), ("+0123", "hi", 21211), (RECIPIENT, "a" * 1601, 21617)],
)
def test_invalid_requests_get_twilio_codes(start_sim, to, body, code):
    sim = start_sim()

    with pytest.raises(TwilioRestException) as refused:
        client_for(sim).messages.create(to=to, from_=SENDER, body=body)

    assert (refused.value.status, refused.value.code) == (400, code)


def test_a_1600_character_body_is_accepted(start_sim):
    sim = start_sim()

    message = client_for(sim).messages.create(to=RECIPIENT, from_=SENDER, body="a" * 1600)

    assert message.num_segments == "11"


def test_missing_body_and_missing_sender_are_refused(start_sim):
    sim = start_sim()
    client = client_for(sim)

    with pytest.raises(TwilioRestException) as no_body:
        client.messages.create(to=RECIPIENT, from_=SENDER)
    with pytest.raises(TwilioRestException) as no_sender:
        client.messages.create(to=RECIPIENT, body="hi")

    assert no_body.value.code == 21602
    assert no_sender.value.code == 21603


def test_wrong_credentials_get_401_20003(start_sim):
    sim = start_sim()

    with pytest.raises(TwilioRestException) as refused:
        client_for(sim, auth_token="0" * 32).messages.create(to=RECIPIENT, from_=SENDER, body="hi")

    assert (refused.value.status, refused.value.code) == (401, 20003)
    raw = httpx.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.settings.account_sid}/Messages.json",
        data={"To": RECIPIENT, "From": SENDER, "Body": "hi"},
    )
    assert raw.status_code == 401
    assert raw.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert sim.messages() == []


def test_a_sender_faster_than_its_mps_gets_429_20429(start_sim):
    # Given a limit of one message a second per sender
    sim = start_sim(sender_mps=1.0)
    client = client_for(sim)
    client.messages.create(to=RECIPIENT, from_=SENDER, body="one")

    # When the same sender sends again at once
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=RECIPIENT, from_=SENDER, body="two")

    # Then it is refused, while another sender is not
    assert (refused.value.status, refused.value.code) == (429, 20429)
    client.messages.create(to=RECIPIENT, from_="+14155550100", body="three")
    assert sim.stats()["rate_limited"] == 1
    assert len(sim.messages()) == 2


def test_5xx_knob_answers_500_without_creating_the_message(start_sim):
    sim = start_sim(error_5xx_rate=1.0)

    with pytest.raises(TwilioRestException) as refused:
        client_for(sim).messages.create(to=RECIPIENT, from_=SENDER, body="hi")

    assert (refused.value.status, refused.value.code) == (500, 20500)
    assert sim.messages() == []
    assert sim.stats()["server_errors"] == 1


def test_a_timed_out_send_may_still_have_gone_out(start_sim):
    sim = start_sim(timeout_rate=1.0, timeout_hang_s=1.0, carriers=ALWAYS_DELIVERED)

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sim.url}/2010-04-01/Accounts/{sim.settings.account_sid}/Messages.json",
            data={"To": RECIPIENT, "From": SENDER, "Body": "hi"},
            auth=(sim.settings.account_sid, sim.settings.auth_token),
            timeout=0.2,
        )

    assert sim.stats()["timeouts"] == 1
    assert [m["to"] for m in sim.messages()] == [RECIPIENT]


# --- reading messages back ----------------------------------------------------------------------


def test_fetching_an_unknown_sid_is_404_20404(start_sim):
    sim = start_sim()

    with pytest.raises(TwilioRestException) as missing:
        client_for(sim).messages("SM" + "0" * 32).fetch()

    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_listing_pages_newest_first(start_sim):
    sim = start_sim()
    client = client_for(sim)
    sids = [client.messages.create(to=RECIPIENT, from_=SENDER, body=f"m{i}").sid for i in range(3)]

    listed = client.messages.list(page_size=2, limit=10)

    assert [m.sid for m in listed] == list(reversed(sids))
    assert [m.sid for m in client.messages.list(to="+14155550999")] == []


def test_a_messaging_service_picks_the_sender_when_the_message_goes(start_sim, receiver):
    sim = start_sim(carriers=ALWAYS_DELIVERED, messaging_service_senders=("+14155550111",))
    service = "MG" + "1" * 32
    client = client_for(sim)

    message = client.messages.create(
        to=RECIPIENT,
        messaging_service_sid=service,
        body="hi",
        status_callback=f"{receiver.url}/status",
    )
    requests = receiver.wait_for("/status", 2)
    assert sim.wait_until_idle()

    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")
    assert [r["params"]["MessagingServiceSid"] for r in requests] == [service, service]
    assert [r["params"]["From"] for r in requests] == ["+14155550111"] * 2
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.from_, fetched.num_segments) == (
        "delivered",
        "+14155550111",
        "1",
    )


# --- replies --------------------------------------------------------------------------------------


def test_a_stop_reply_is_a_signed_inbound_webhook_and_unsubscribes(start_sim, receiver):
    # Given every recipient replies STOP after delivery
    sim = start_sim(
        carriers=ALWAYS_DELIVERED,
        reply_rate=1.0,
        reply_bodies=("STOP",),
        reply_delay_s=(0.01, 0.02),
        inbound_webhook_url=f"{receiver.url}/inbound",
    )
    client = client_for(sim)

    # When a message is delivered
    message = client.messages.create(to=RECIPIENT, from_=SENDER, body="Big sale today")
    inbound = receiver.wait_for("/inbound", 1)
    assert sim.wait_until_idle()

    # Then the reply arrives signed, with Twilio's inbound parameters
    assert_signed(inbound)
    params = inbound[0]["params"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", params["MessageSid"])
    assert params["SmsSid"] == params["SmsMessageSid"] == params["MessageSid"]
    shown = ("AccountSid", "From", "To", "Body", "NumMedia", "NumSegments", "SmsStatus")
    assert {k: params[k] for k in (*shown, "ApiVersion", "FromCountry", "ToCountry")} == {
        "AccountSid": sim.settings.account_sid,
        "From": RECIPIENT,
        "To": SENDER,
        "Body": "STOP",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCountry": "US",
        "ToCountry": "US",
    }
    assert sim.messages()[0]["replies"] == [params["MessageSid"]]

    # And the same sender can no longer reach that recipient
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=RECIPIENT, from_=SENDER, body="Last chance")
    assert refused.value.code == 21610
    assert sim.stats()["opted_out"] == 1
    assert message.sid != params["MessageSid"]


def test_a_stop_with_punctuation_is_not_a_twilio_keyword(start_sim, receiver):
    sim = start_sim(inbound_webhook_url=f"{receiver.url}/inbound")

    sim.inject_inbound(RECIPIENT, SENDER, "Stop.")
    receiver.wait_for("/inbound", 1)

    assert receiver.on("/inbound")[0]["params"]["Body"] == "Stop."
    assert sim.stats()["opted_out"] == 0
    client_for(sim).messages.create(to=RECIPIENT, from_=SENDER, body="still allowed")


# --- repeatability ------------------------------------------------------------------------------


def outcomes_of_a_run(seed: int) -> list[tuple[str, str, str, int | None]]:
    settings = SimulatorSettings(
        **FAST,
        seed=seed,
        carriers={
            "Alpha": {"delivered": 0.5, "30003": 0.25, "failed:30008": 0.25},
            "Beta": {"delivered": 0.4, "30005": 0.3, "30007": 0.3},
        },
    )
    with CarrierSimulator(settings) as sim:
        client = client_for(sim)
        for i in range(16):
            client.messages.create(to=f"+1415555{i:04d}", from_=SENDER, body=f"offer {i % 3}")
        assert sim.wait_until_idle()
        return [(m["to"], m["carrier"], m["status"], m["error_code"]) for m in sim.messages()]


def test_same_seed_gives_the_same_outcomes():
    first = outcomes_of_a_run(seed=7)
    second = outcomes_of_a_run(seed=7)
    other = outcomes_of_a_run(seed=8)

    assert first == second
    assert first != other
    assert {status for _, _, status, _ in first} == {"delivered", "undelivered", "failed"}


# --- admin endpoints and the command line -------------------------------------------------------


def test_admin_endpoints_configure_report_and_reset(start_sim, receiver):
    sim = start_sim(carriers=ALWAYS_DELIVERED)
    client = client_for(sim)

    changed = httpx.post(f"{sim.url}/_sim/config", json={"duplicate_rate": 1.0})
    refused = httpx.post(f"{sim.url}/_sim/config", json={"duplicate_rate": 2})
    client.messages.create(
        to=RECIPIENT, from_=SENDER, body="hi", status_callback=f"{receiver.url}/status"
    )
    receiver.wait_for("/status", 4)
    assert sim.wait_until_idle()
    listed = httpx.get(f"{sim.url}/_sim/messages").json()["messages"]
    stats = httpx.get(f"{sim.url}/_sim/stats").json()

    assert changed.status_code == 200 and changed.json()["duplicate_rate"] == 1.0
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "duplicate_rate"
    assert [(m["to"], m["from"], m["body"], m["status"], m["carrier"]) for m in listed] == [
        (RECIPIENT, SENDER, "hi", "delivered", "TestNet")
    ]
    assert [c["status"] for c in listed[0]["callbacks"]] == [
        "sent",
        "sent",
        "delivered",
        "delivered",
    ]
    assert stats["by_status"] == {"delivered": 1}
    assert stats["callbacks"] == {"posted": 4, "failed_attempts": 0, "dropped": 0}

    assert httpx.post(f"{sim.url}/_sim/reset").status_code == 200
    assert httpx.get(f"{sim.url}/_sim/messages").json() == {"messages": []}
    assert httpx.get(f"{sim.url}/_sim/stats").json()["messages"] == 0


def test_signature_helper_matches_the_twilio_validator():
    url = "https://example.com/webhooks/twilio/status?x=1"
    params = {"MessageSid": "SM1", "Body": "héllo \U0001f44d", "To": "+14155550123"}

    signature = twilio_signature(DEFAULT_AUTH_TOKEN, url, params)

    assert RequestValidator(DEFAULT_AUTH_TOKEN).validate(url, params, signature)
    assert not RequestValidator("f" * 32).validate(url, params, signature)


def test_command_line_serves_standalone():
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.carrier_sim", "--port", "0", "--seed", "3"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+", first_line).group(0)

        stats = httpx.get(f"{url}/_sim/stats", timeout=5).json()

        assert stats["messages"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_each_sender_can_have_its_own_mps(start_sim):
    # Given no general limit, but one number held to one message a second
    sim = start_sim(sender_mps=None, sender_mps_by_number={SENDER: 1.0})
    client = client_for(sim)
    client.messages.create(to=RECIPIENT, from_=SENDER, body="one")

    # When both that number and another send twice at once
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=RECIPIENT, from_=SENDER, body="two")
    client.messages.create(to=RECIPIENT, from_="+14155550100", body="three")
    client.messages.create(to=RECIPIENT, from_="+14155550100", body="four")

    # Then only the limited number is refused
    assert (refused.value.status, refused.value.code) == (429, 20429)
    assert sim.stats()["rate_limited"] == 1
    assert len(sim.messages()) == 3


def test_a_twiml_reply_to_an_inbound_text_is_sent_back_from_the_number_texted(start_sim, receiver):
    # Given a webhook that answers an inbound text with a TwiML message
    sim = start_sim(inbound_webhook_url=f"{receiver.url}/inbound")
    receiver.answer = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme: open 9-5 &amp; '
                       b"Sat.</Message></Response>")

    # When a handset texts the sender
    sim.inject_inbound(RECIPIENT, SENDER, "hours?")
    receiver.wait_for("/inbound", 1)
    assert sim.wait_until_idle()

    # Then the reply goes from the number texted to the handset, as an API send would
    replies = [m for m in sim.messages() if m["direction"] == "outbound-api"]
    assert [(m["from"], m["to"], m["body"]) for m in replies] == [(SENDER, RECIPIENT, "Acme: open 9-5 & Sat.")]
    assert sim.stats()["replies"]["twiml_sent"] == 1


def test_a_twiml_reply_to_a_stop_is_refused_as_twilio_refuses_it(start_sim, receiver):
    sim = start_sim(inbound_webhook_url=f"{receiver.url}/inbound")
    receiver.answer = b"<Response><Message>You are unsubscribed.</Message></Response>"

    sim.inject_inbound(RECIPIENT, SENDER, "STOP")
    receiver.wait_for("/inbound", 1)
    assert sim.wait_until_idle()

    assert [m for m in sim.messages() if m["direction"] == "outbound-api"] == []
    assert (sim.stats()["replies"]["twiml_sent"], sim.stats()["replies"]["twiml_refused"]) == (0, 1)
