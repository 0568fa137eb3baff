"""A local carrier that speaks Twilio's Messages API, used in place of Twilio by the local stack
and the tests.

What it does, so that the real Twilio adapter is exercised over HTTP:

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: Basic auth, form-encoded parameters,
  201 with the Twilio message resource, 4xx bodies with Twilio error codes, Twilio's magic test
  numbers, 429 (20429) when one sender goes faster than `sender_mps`.
- `GET .../Messages/{Sid}.json` and `GET .../Messages.json` (a page, newest first).
- Status callbacks signed with `X-Twilio-Signature`: none for the initial status, then `sent`,
  then `delivered` or `undelivered` (with `ErrorCode`); `failed` has a single callback. Outcomes
  come from seeded per-carrier distributions; each recipient is assigned a carrier.
- Phone validation lookups on the same server, in two providers' shapes: the Trestle-style
  `GET /3.0/phone_intel?phone=...` (`x-api-key`: an activity score 0-100 and a line type) and
  Twilio's Lookup v2 `GET /v2/PhoneNumbers/{E164}?Fields=line_type_intelligence,line_status`
  (Basic auth, the same credentials as the Messages API).
- Every recipient number has a fate, drawn once from (seed, number): the outcome its carrier's
  distribution gives it, an activity score that mostly agrees with that outcome, and whether it
  is a landline. With `outcomes_follow_score` (the default) a send's outcome is its number's
  fate, and a landline gets undelivered 30006, so screening leads by their lookups visibly
  raises the delivery rate, as it should with a real provider.
- Knobs for what real carriers do to a webhook consumer: delays, duplicate callbacks, the final
  status before `sent`, 5xx, requests that hang, failing callback URLs (retried, then dropped),
  and recipients who reply (STOP and its variants, HELP, free text). A recipient whose reply is
  exactly an opt-out keyword is unsubscribed from that sender, as Twilio does: later sends get
  21610.
- Admin endpoints (unauthenticated, local only): `GET /_sim/messages`, `GET /_sim/stats`,
  `POST /_sim/config` (JSON patch of the settings), `POST /_sim/reset`, and `POST /_sim/inbound`
  (`{"from", "to", "body"}`: a recipient texts a sender now).

Repeatability: a message's delays and reply (and its outcome when outcomes do not follow the
number's fate) are drawn from a generator seeded with the seed, the sender, the recipient, the
body and how many times that same message was sent before; a number's fate from one seeded with
the seed and the number.
The same sends with the same seed give the same outcomes whatever the thread timing; message sids
are random, so they never collide with sids a previous run left in a database.

Run standalone with `python -m devstack.carrier_sim --port 8089`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import re
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

try:
    from sendline.domain.encoding import analyse, smart_encode
except ImportError:  # started from a clone without the shared layer on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "sendline" / "python"))
    from sendline.domain.encoding import analyse, smart_encode

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC5e7d1a2b3c4d5e6f708192a3b4c5d6e7"
DEFAULT_AUTH_TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
MAX_BODY_CHARACTERS = 1600
MAX_REQUEST_BYTES = 64 * 1024

# Share of each carrier's traffic by outcome. "delivered"; "sent" (the carrier never returns a
# receipt, so `sent` stays final); a bare 30xxx code: undelivered with that code;
# "failed:<code>": failed (never sent) with that code.
DEFAULT_CARRIERS: dict[str, dict[str, float]] = {
    "AT&T": {"delivered": 0.95, "30003": 0.02, "30005": 0.01, "30007": 0.02},
    "T-Mobile": {
        "delivered": 0.94,
        "30003": 0.02,
        "30005": 0.01,
        "30006": 0.01,
        "30007": 0.015,
        "failed:30008": 0.005,
    },
    "Verizon": {"delivered": 0.955, "30003": 0.015, "30005": 0.01, "30007": 0.015, "sent": 0.005},
}

DEFAULT_REPLY_BODIES = (
    "STOP",
    "stop",
    "Stop.",
    "HELP",
    "please stop texting me",
    "who is this?",
    "yes interested",
)

# Twilio's default keyword handling: only a body that is exactly one of these words counts.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number "
    "for this destination/account.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30032: "Toll-Free Number Has Not Been Verified",
    30034: "Message from an Unregistered Number",
}

# Twilio's magic test numbers (https://www.twilio.com/docs/iam/test-credentials).
MAGIC_FROM_ERRORS = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
MAGIC_TO_ERRORS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_ALWAYS_DELIVERED = "+15005550006"
MAGIC_NOT_MOBILE = "+15005550009"  # 21614 on send; its lookups say landline

DEFAULT_LOOKUP_API_KEY = "sim-lookup-key"
# A number's activity score agrees with its fate most of the time: one its carrier delivers to
# scores in DELIVERABLE_SCORES, any other in UNDELIVERABLE_SCORES, except for SCORE_OVERLAP of
# each, which score on the other side (a score is a prediction, not the carrier's verdict).
DELIVERABLE_SCORES = (55, 100)
UNDELIVERABLE_SCORES = (0, 35)
SCORE_OVERLAP = 0.10
# Twilio Lookup's `line_status` for a score, highest band first: active numbers are in use,
# reachable ones were seen on the network, unknown ones have too few signals either way.
LINE_STATUS_BANDS = ((70, "active"), (50, "reachable"), (31, "unknown"), (11, "unreachable"))
# Mobile country and network codes Lookup reports for the default carriers' mobile numbers.
MOBILE_NETWORKS = {"AT&T": ("310", "410"), "T-Mobile": ("310", "260"), "Verizon": ("311", "480")}
LOOKUP_PACKAGES = (
    "caller_name",
    "sim_swap",
    "call_forwarding",
    "line_status",
    "line_type_intelligence",
    "identity_match",
    "reassigned_number",
    "sms_pumping_risk",
    "phone_number_quality_score",
    "pre_fill",
)
COUNTRY_NAMES = {"US": "United States", "CA": "Canada"}

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_OUTCOME = re.compile(r"^(delivered|sent|\d{5}|failed:\d{5})$")
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$"
)
_PHONE_INTEL_PATH = "/3.0/phone_intel"
_LOOKUP_PATH = re.compile(r"^/v2/PhoneNumbers/(?P<number>[^/]+)$")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class SimulatorSettings(BaseModel):
    """Every knob of the simulator; `/_sim/config` and `configure()` change them at runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(DEFAULT_ACCOUNT_SID, pattern=r"^AC[0-9a-f]{32}$")
    auth_token: str = Field(DEFAULT_AUTH_TOKEN, pattern=r"^[0-9a-f]{32}$")
    seed: int = 42
    # Each callback waits a draw from this range (seconds) after the previous one.
    callback_delay_s: tuple[float, float] = (0.2, 1.0)
    duplicate_rate: Probability = 0.0  # each callback is posted twice with this probability
    out_of_order_rate: Probability = 0.0  # the final status is posted before `sent`
    error_5xx_rate: Probability = 0.0  # a send answers 500 without creating the message
    timeout_rate: Probability = 0.0  # a send hangs `timeout_hang_s`, then answers 500
    timeout_hang_s: float = Field(30.0, ge=0.0)
    # A send that times out on the client may still have gone out: that is the case the
    # platform records as `unknown` and never retries.
    timeout_creates_message: bool = True
    sender_mps: float | None = Field(10.0, gt=0.0)  # None: no limit
    # Per-sender limits that override `sender_mps`, as a carrier holds each number to its own.
    sender_mps_by_number: dict[str, float] = Field(default_factory=dict)
    reply_rate: Probability = 0.0  # share of delivered messages whose recipient replies
    reply_delay_s: tuple[float, float] = (1.0, 5.0)
    reply_bodies: tuple[str, ...] = DEFAULT_REPLY_BODIES
    inbound_webhook_url: str | None = None
    price_per_segment: str = "-0.00790"
    carriers: dict[str, dict[str, float]] = Field(default_factory=lambda: dict(DEFAULT_CARRIERS))
    # Senders a Messaging Service picks from (sticky per recipient).
    messaging_service_senders: tuple[str, ...] = ("+15005550006",)
    callback_retries: int = Field(2, ge=0)  # after the first attempt; then the callback is dropped
    callback_retry_delay_s: float = Field(0.5, ge=0.0)
    # These two are read by start(): changing them at runtime applies from the next start.
    callback_timeout_s: float = Field(5.0, gt=0.0)
    callback_workers: int = Field(8, ge=1)
    # The phone validation lookups: the Trestle-style API's key, whether a send's outcome is its
    # number's fate (False: drawn per message, as before lookups existed), and the share of
    # numbers that are landlines (undelivered 30006 when outcomes follow the fate).
    lookup_api_key: str = Field(DEFAULT_LOOKUP_API_KEY, min_length=1)
    outcomes_follow_score: bool = True
    landline_rate: Probability = 0.05

    @field_validator("callback_delay_s", "reply_delay_s")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("must be (min, max) with 0 <= min <= max")
        return value

    @field_validator("price_per_segment")
    @classmethod
    def _decimal(cls, value: str) -> str:
        try:
            Decimal(value)
        except InvalidOperation as exc:
            raise ValueError("must be a decimal number such as -0.00790") from exc
        return value

    @field_validator("reply_bodies", "messaging_service_senders")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("carriers")
    @classmethod
    def _distributions(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        if not value:
            raise ValueError("at least one carrier is needed")
        for carrier, outcomes in value.items():
            for outcome, share in outcomes.items():
                if not _OUTCOME.match(outcome):
                    raise ValueError(
                        f"{carrier}: outcome {outcome!r} must be delivered, sent, a 5-digit "
                        "error code (undelivered) or failed:<code>"
                    )
                if share < 0:
                    raise ValueError(f"{carrier}: share of {outcome} is negative")
            if abs(sum(outcomes.values()) - 1.0) > 1e-6:
                raise ValueError(f"{carrier}: shares must sum to 1, not {sum(outcomes.values())}")
        return value


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature`: HMAC-SHA1 over the full URL then each parameter name and value,
    sorted by name, keyed with the auth token, Base64-encoded."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioError(Exception):
    """A request the simulated Twilio refuses, with the status and code Twilio would use."""

    def __init__(self, status: int, code: int, **details: str):
        self.status = status
        self.code = code
        super().__init__(ERROR_MESSAGES[code].format(**details))

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class PhoneIntelError(Exception):
    """A request the simulated Trestle-style API refuses: `{"error": {"name", "message"}}`."""

    def __init__(self, status: int, name: str, message: str):
        self.status = status
        self.name = name
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {"error": {"name": self.name, "message": str(self)}}


# Rank of each Twilio status: a callback never moves the stored message backwards.
_RANK = {"accepted": 0, "queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2}


@dataclass
class _Message:
    sid: str
    account_sid: str
    direction: str
    to: str
    from_: str | None  # shown to clients; a Messaging Service fills it in when the message goes
    sender: str  # the number that actually sends (or receives, for inbound)
    body: str
    segments: int
    status: str
    created_at: datetime
    updated_at: datetime
    messaging_service_sid: str | None = None
    carrier: str | None = None
    outcome: str | None = None
    status_callback: str | None = None
    sent_at: datetime | None = None
    done_at: datetime | None = None  # when the carrier's receipt said delivered/undelivered
    price: str | None = None
    error_code: int | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    in_reply_to: str | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The message as Twilio's API returns it."""
        shown_segments = self.segments
        if self.messaging_service_sid and self.status == "accepted":
            shown_segments = 0  # no sender chosen yet
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": format_datetime(self.created_at),
            "date_sent": format_datetime(self.sent_at) if self.sent_at else None,
            "date_updated": format_datetime(self.updated_at),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code) if self.error_code else None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(shown_segments),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": self.uri.removesuffix(".json") + "/Media.json",
                "feedback": self.uri.removesuffix(".json") + "/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }

    def summary(self) -> dict[str, Any]:
        """The message as the admin endpoint shows it: what the carrier did with it."""
        return {
            "sid": self.sid,
            "direction": self.direction,
            "to": self.to,
            "from": self.sender,
            "messaging_service_sid": self.messaging_service_sid,
            "body": self.body,
            "segments": self.segments,
            "status": self.status,
            "error_code": self.error_code,
            "carrier": self.carrier,
            "outcome": self.outcome,
            "price": self.price,
            "status_callback": self.status_callback,
            "callbacks": [dict(c) for c in self.callbacks],
            "replies": list(self.replies),
            "in_reply_to": self.in_reply_to,
            "date_created": _iso(self.created_at),
        }


@dataclass(frozen=True)
class _Callback:
    """One status callback the carrier will post, `delay_s` after the previous one finished."""

    delay_s: float
    status: str
    error_code: int | None


@dataclass(frozen=True)
class _Fate:
    """What is true of a recipient number whoever texts it: see `_fate_for`."""

    outcome: str  # drawn from its carrier's distribution, as a message's outcome is
    activity_score: int
    landline: bool

    @property
    def send_outcome(self) -> str:
        """What a text to it becomes: a landline cannot take one, whatever its carrier does."""
        return "30006" if self.landline else self.outcome


@dataclass(frozen=True)
class _Plan:
    callbacks: tuple[_Callback, ...]
    reply_body: str | None
    reply_delay_s: float


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    job: Callable[[], None] = field(compare=False)


class _Scheduler:
    """One thread that keeps timed jobs in a heap and hands due ones to a small worker pool."""

    def __init__(self, workers: int):
        self._heap: list[_Due] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopping = False
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="carrier-sim-cb")
        self._thread = threading.Thread(
            target=self._loop, name="carrier-sim-scheduler", daemon=True
        )
        self._thread.start()

    def call_later(self, delay_s: float, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:
                return
            heapq.heappush(self._heap, _Due(time.monotonic() + delay_s, next(self._seq), job))
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and self._running == 0

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._heap or self._heap[0].at > time.monotonic()
                ):
                    timeout = self._heap[0].at - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                due = heapq.heappop(self._heap)
                self._running += 1
            self._pool.submit(self._run, due.job)

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # a broken job must not take the scheduler down
            logger.exception("carrier simulator job failed")
        finally:
            with self._cond:
                self._running -= 1


class _SenderRateLimit:
    """Token bucket per sender: `mps` tokens a second, bursts of up to one second's worth."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, sender: str, mps: float, now: float) -> bool:
        capacity = max(1.0, mps)
        tokens, last = self._buckets.get(sender, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * mps)
        if tokens < 1.0:
            self._buckets[sender] = (tokens, now)
            return False
        self._buckets[sender] = (tokens - 1.0, now)
        return True


class CarrierSimulator:
    """The simulated carrier. `start()` serves it on a background thread; `stop()` ends it."""

    def __init__(self, settings: SimulatorSettings | None = None):
        self._settings = settings or SimulatorSettings()
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._scheduler: _Scheduler | None = None
        self._http: httpx.Client | None = None
        self._url: str | None = None
        self._reset_state()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on (host, port); port 0 picks a free one. Returns the base URL."""
        if self._server is not None:
            raise RuntimeError("the carrier simulator is already running")
        self._stop_event.clear()
        self._scheduler = _Scheduler(self._settings.callback_workers)
        self._http = httpx.Client(timeout=self._settings.callback_timeout_s)
        server = _Server((host, port), _Handler)
        server.simulator = self
        self._server = server
        bound_host, bound_port = server.server_address[:2]
        self._url = f"http://{bound_host}:{bound_port}"
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so that stop() returns promptly
            name="carrier-sim-http",
            daemon=True,
        )
        self._serve_thread.start()
        logger.info("carrier simulator listening on %s", self._url)
        return self._url

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the carrier simulator is not running")
        return self._url

    def stop(self) -> None:
        """Stop serving, cancel every pending callback and reply, and join the threads."""
        self._stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join()
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._http is not None:
            self._http.close()
        self._server = self._serve_thread = self._scheduler = self._http = None
        self._url = None

    def __enter__(self) -> CarrierSimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- runtime control (also served under /_sim) ------------------------------------------

    @property
    def settings(self) -> SimulatorSettings:
        return self._settings

    def configure(self, **changes: Any) -> SimulatorSettings:
        """Change knobs at runtime; raises pydantic's ValidationError on a bad value."""
        with self._lock:
            merged = {**self._settings.model_dump(), **changes}
            self._settings = SimulatorSettings.model_validate(merged)
            return self._settings

    def reset(self) -> None:
        """Forget every message, counter, opt-out and pending callback."""
        with self._lock:
            self._reset_state()
            if self._scheduler is not None:
                self._scheduler.clear()

    def wait_until_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until no callback or reply is pending; False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._scheduler is None or self._scheduler.idle():
                return True
            time.sleep(0.01)
        return False

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m.summary() for m in self._messages.values()]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            outbound = [m for m in self._messages.values() if m.direction == "outbound-api"]
            return {
                "messages": len(outbound),
                "inbound": len(self._messages) - len(outbound),
                "by_status": dict(Counter(m.status for m in outbound)),
                "by_error_code": dict(
                    Counter(str(m.error_code) for m in outbound if m.error_code)
                ),
                "by_carrier": dict(Counter(m.carrier for m in outbound)),
                "rejected": dict(self._counters["rejected"]),
                "rate_limited": self._counters["totals"]["rate_limited"],
                "server_errors": self._counters["totals"]["server_errors"],
                "timeouts": self._counters["totals"]["timeouts"],
                "auth_failures": self._counters["totals"]["auth_failures"],
                "callbacks": {
                    "posted": self._counters["totals"]["callbacks_posted"],
                    "failed_attempts": self._counters["totals"]["callback_failed_attempts"],
                    "dropped": self._counters["totals"]["callbacks_dropped"],
                },
                "replies": {
                    "posted": self._counters["totals"]["replies_posted"],
                    "dropped": self._counters["totals"]["replies_dropped"],
                    "by_body": dict(self._counters["reply_bodies"]),
                    "twiml_sent": self._counters["totals"]["twiml_replies"],
                    "twiml_refused": self._counters["totals"]["twiml_replies_refused"],
                },
                "opted_out": len(self._opted_out),
                "lookups": {
                    "phone_intel": self._counters["lookups"]["phone_intel"],
                    "lookup_v2": self._counters["lookups"]["lookup_v2"],
                },
            }

    def inject_inbound(
        self, from_: str, to: str, body: str, messaging_service_sid: str | None = None
    ) -> str:
        """A handset texts `to` now: the signed inbound webhook goes to `inbound_webhook_url`.

        Returns the inbound message sid. Raises ValueError if a number is not E.164.
        """
        if not (_E164.match(from_) and _E164.match(to)):
            raise ValueError("from and to must be E.164 numbers")
        scheduler = self._require_scheduler()
        inbound = self._record_inbound(from_, to, body, messaging_service_sid, in_reply_to=None)
        scheduler.call_later(0.0, lambda: self._post_inbound(inbound, 1, None))
        return inbound.sid

    # --- the Messages API -------------------------------------------------------------------

    def create_message(self, account_sid: str, form: Mapping[str, str]) -> dict[str, Any]:
        """Handle a `Messages.json` POST whose credentials were already checked."""
        settings = self._settings
        if account_sid != settings.account_sid:
            raise TwilioError(404, 20404, path=f"/{API_VERSION}/Accounts/{account_sid}/Messages")
        to = form.get("To", "").strip()
        from_ = form.get("From", "").strip() or None
        service_sid = form.get("MessagingServiceSid", "").strip() or None
        body = form.get("Body", "")
        status_callback = form.get("StatusCallback", "").strip() or None
        if from_ is None and service_sid is None:
            self._count_rejected(21603)
            raise TwilioError(400, 21603)
        sender_key = from_ or service_sid or ""

        sender_mps = settings.sender_mps_by_number.get(sender_key, settings.sender_mps)
        if sender_mps is not None:
            with self._lock:
                allowed = self._rate_limit.allow(sender_key, sender_mps, time.monotonic())
                if not allowed:
                    self._counters["totals"]["rate_limited"] += 1
            if not allowed:
                raise TwilioError(429, 20429)

        self._validate(to, from_, service_sid, body)
        if form.get("SmartEncoded", "").lower() == "true":
            body = smart_encode(body)

        with self._lock:
            attempt_key = (sender_key, to, body)
            self._attempts[attempt_key] += 1
            fault = random.Random(
                _digest(settings.seed, "fault", *attempt_key, self._attempts[attempt_key])
            )
            times_out = fault.random() < settings.timeout_rate
            fails = fault.random() < settings.error_5xx_rate
        if times_out:
            self._counters_add("timeouts")
            if settings.timeout_creates_message:
                self._accept(to, from_, service_sid, body, status_callback)
            self._stop_event.wait(settings.timeout_hang_s)
            raise TwilioError(500, 20500)
        if fails:
            self._counters_add("server_errors")
            raise TwilioError(500, 20500)
        message = self._accept(to, from_, service_sid, body, status_callback)
        with self._lock:
            return message.resource()

    def fetch_message(self, account_sid: str, sid: str) -> dict[str, Any]:
        with self._lock:
            message = self._messages.get(sid)
            if message is None or account_sid != self._settings.account_sid:
                raise TwilioError(
                    404, 20404, path=f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
                )
            return message.resource()

    def list_messages(self, account_sid: str, query: Mapping[str, str]) -> dict[str, Any]:
        path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        if account_sid != self._settings.account_sid:
            raise TwilioError(404, 20404, path=path)
        page_size = max(1, min(1000, _int(query.get("PageSize"), 50)))
        page = max(0, _int(query.get("Page"), 0))
        with self._lock:
            matching = [
                m
                for m in reversed(self._messages.values())
                if query.get("To") in (None, m.to) and query.get("From") in (None, m.from_)
            ]
            window = matching[page * page_size : (page + 1) * page_size]
            resources = [m.resource() for m in window]

        def page_uri(number: int) -> str:
            params = {k: v for k, v in query.items() if k not in ("Page", "PageSize")}
            return f"{path}?{urlencode({**params, 'PageSize': page_size, 'Page': number})}"

        has_next = (page + 1) * page_size < len(matching)
        return {
            "messages": resources,
            "page": page,
            "page_size": page_size,
            "start": page * page_size,
            "end": page * page_size + max(0, len(resources) - 1),
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        }

    def check_credentials(self, authorization: str | None) -> bool:
        settings = self._settings
        expected = f"{settings.account_sid}:{settings.auth_token}"
        given = ""
        if authorization and authorization.startswith("Basic "):
            try:
                given = base64.b64decode(authorization[6:], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
        ok = hmac.compare_digest(given.encode(), expected.encode())
        if not ok:
            self._counters_add("auth_failures")
        return ok

    # --- the phone validation lookups -------------------------------------------------------

    def phone_intel(self, api_key: str | None, query: Mapping[str, str]) -> dict[str, Any]:
        """Answer `GET /3.0/phone_intel` as the Trestle-style API does, or raise
        PhoneIntelError (401 for a missing or wrong `x-api-key`, 400 without a phone)."""
        settings = self._settings
        if not hmac.compare_digest((api_key or "").encode(), settings.lookup_api_key.encode()):
            self._counters_add("auth_failures")
            reason = "invalid API key" if api_key else "missing x-api-key header"
            raise PhoneIntelError(401, "NotAuthorized", reason)
        raw = query.get("phone", "").strip()
        if not raw:
            raise PhoneIntelError(400, "MissingInput", "phone is required")
        self._count_lookup("phone_intel")
        region = query.get("phone.country_hint", "").strip().upper() or "US"
        number = _parse_number(raw, region)
        if number is None or not phonenumbers.is_valid_number(number):
            return {
                "id": None,
                "phone_number": raw,
                "is_valid": False,
                "activity_score": None,
                "country_calling_code": str(number.country_code) if number else None,
                "country_code": None,
                "country_name": None,
                "line_type": None,
                "carrier": None,
                "is_prepaid": None,
                "error": None,
                "warnings": ["Invalid Input"],
            }
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        fate = _fate_for(e164, settings)
        country = phonenumbers.region_code_for_number(number)
        return {
            "id": f"Phone.{uuid.UUID(_digest('phone-id', e164)[:32])}",
            "phone_number": e164,
            "is_valid": True,
            "activity_score": fate.activity_score,
            "country_calling_code": str(number.country_code),
            "country_code": country,
            "country_name": COUNTRY_NAMES.get(country or ""),
            "line_type": "Landline" if fate.landline else "Mobile",
            "carrier": _carrier_for(e164, settings),
            "is_prepaid": None if fate.landline else False,
            "error": None,
            "warnings": [],
        }

    def lookup_phone_number(self, raw: str, fields: str) -> dict[str, Any]:
        """Answer Twilio Lookup v2's `GET /v2/PhoneNumbers/{number}` whose credentials were
        already checked. A number that cannot be parsed is 404 20404, as on Twilio; one that
        parses but is not valid is 200 with `valid: false` and no data packages."""
        settings = self._settings
        self._count_lookup("lookup_v2")
        number = _parse_number(raw, "US")
        if number is None:
            raise TwilioError(404, 20404, path=f"/PhoneNumbers/{raw}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        valid = phonenumbers.is_valid_number(number)
        requested = {name.strip() for name in fields.split(",") if name.strip()}
        resource: dict[str, Any] = {
            "calling_country_code": str(number.country_code),
            "country_code": phonenumbers.region_code_for_number(number) if valid else None,
            "phone_number": e164,
            "national_format": phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.NATIONAL
            ),
            "valid": valid,
            "validation_errors": [] if valid else [_validation_error(number)],
            # Twilio shows every package; those not asked for (or not simulated) are null.
            **{package: None for package in LOOKUP_PACKAGES},
            "url": f"{self._url or ''}/v2/PhoneNumbers/{e164}",
        }
        if not valid:
            return resource
        fate = _fate_for(e164, settings)
        carrier = _carrier_for(e164, settings)
        if "line_type_intelligence" in requested:
            mobile_network = (None, None) if fate.landline else MOBILE_NETWORKS.get(carrier)
            mobile_country_code, mobile_network_code = mobile_network or (None, None)
            resource["line_type_intelligence"] = {
                "error_code": None,
                "mobile_country_code": mobile_country_code,
                "mobile_network_code": mobile_network_code,
                "carrier_name": carrier,
                "type": "landline" if fate.landline else "mobile",
            }
        if "line_status" in requested:
            resource["line_status"] = {"status": _line_status(fate), "error_code": None}
        return resource

    # --- internals ----------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._messages: dict[str, _Message] = {}
        self._attempts: Counter[tuple[str, str, str]] = Counter()
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        self._opted_out: set[tuple[str, str]] = set()  # (sender or service, recipient)
        self._rate_limit = _SenderRateLimit()
        self._counters: dict[str, Counter[str]] = {
            "totals": Counter(),
            "rejected": Counter(),
            "reply_bodies": Counter(),
            "lookups": Counter(),
        }
        self._generation = getattr(self, "_generation", 0) + 1

    def _count_lookup(self, api: str) -> None:
        with self._lock:
            self._counters["lookups"][api] += 1

    def _counters_add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters["totals"][name] += amount

    def _count_rejected(self, code: int) -> None:
        with self._lock:
            self._counters["rejected"][str(code)] += 1

    def _require_scheduler(self) -> _Scheduler:
        if self._scheduler is None:
            raise RuntimeError("the carrier simulator is not running")
        return self._scheduler

    def _validate(self, to: str, from_: str | None, service_sid: str | None, body: str) -> None:
        def reject(code: int) -> TwilioError:
            self._count_rejected(code)
            return TwilioError(400, code, to=to, from_=from_ or "")

        if from_ is not None:
            if from_ in MAGIC_FROM_ERRORS:
                raise reject(MAGIC_FROM_ERRORS[from_])
            if not (_E164.match(from_) or _ALPHANUMERIC_SENDER.match(from_)):
                raise reject(21212)
        if to in MAGIC_TO_ERRORS:
            raise reject(MAGIC_TO_ERRORS[to])
        if not _E164.match(to):
            raise reject(21211)
        if not body:
            raise reject(21602)
        if len(body) > MAX_BODY_CHARACTERS:
            raise reject(21617)
        with self._lock:
            if (from_ or service_sid or "", to) in self._opted_out:
                raise reject(21610)

    def _accept(
        self,
        to: str,
        from_: str | None,
        service_sid: str | None,
        body: str,
        status_callback: str | None,
    ) -> _Message:
        """Create the message and plan what the carrier will report about it."""
        with self._lock:
            settings = self._settings
            sender_key = from_ or service_sid or ""
            self._occurrences[(sender_key, to, body)] += 1
            occurrence = self._occurrences[(sender_key, to, body)]
            carrier = _carrier_for(to, settings)
            sender = from_ or _service_sender(to, settings)
            now = _now()
            message = _Message(
                sid=_new_sid(),
                account_sid=settings.account_sid,
                direction="outbound-api",
                to=to,
                from_=from_,
                sender=sender,
                body=body,
                segments=analyse(body).segments,
                status="accepted" if from_ is None else "queued",
                created_at=now,
                updated_at=now,
                messaging_service_sid=service_sid,
                carrier=carrier,
                status_callback=status_callback,
            )
            rng = random.Random(_digest(settings.seed, "outcome", sender_key, to, body, occurrence))
            fated = _fate_for(to, settings).send_outcome if settings.outcomes_follow_score else None
            plan = _plan(
                rng,
                settings.carriers[carrier],
                settings,
                forced_delivery=to == MAGIC_ALWAYS_DELIVERED,
                fated_outcome=fated,
            )
            message.outcome = _outcome_label(plan)
            self._messages[message.sid] = message
            generation = self._generation
        if plan.callbacks:
            self._require_scheduler().call_later(
                plan.callbacks[0].delay_s, lambda: self._run_callback(message, plan, 0, generation)
            )
        return message

    def _run_callback(
        self,
        message: _Message,
        plan: _Plan,
        index: int,
        generation: int,
        attempt: int = 1,
        record: dict[str, Any] | None = None,
    ) -> None:
        if generation != self._generation or self._stop_event.is_set():
            return
        settings = self._settings
        step = plan.callbacks[index]
        with self._lock:
            if record is None:
                self._apply_status(message, step)
                record = {
                    "status": step.status,
                    "error_code": step.error_code,
                    "url": message.status_callback,
                    "attempts": 0,
                    "delivered": False,
                    "dropped": False,
                    "http_status": None,
                    # Retries of one callback share a token; a duplicate gets its own, as the
                    # duplicates a consumer has to absorb do.
                    "idempotency_token": uuid.uuid4().hex,
                }
                message.callbacks.append(record)
            params = _status_params(message, step)
        if message.status_callback:
            status_code, _ = self._post_signed(
                message.status_callback, params, record["idempotency_token"]
            )
            delivered = status_code is not None and 200 <= status_code < 300
            retry = not delivered and attempt <= settings.callback_retries
            with self._lock:
                record.update(attempts=attempt, http_status=status_code, delivered=delivered)
                totals = self._counters["totals"]
                totals["callbacks_posted" if delivered else "callback_failed_attempts"] += 1
                if not delivered and not retry:
                    record["dropped"] = True
                    totals["callbacks_dropped"] += 1
            if retry:
                self._require_scheduler().call_later(
                    settings.callback_retry_delay_s,
                    lambda: self._run_callback(
                        message, plan, index, generation, attempt + 1, record
                    ),
                )
                return
        scheduler = self._require_scheduler()
        if index + 1 < len(plan.callbacks):
            scheduler.call_later(
                plan.callbacks[index + 1].delay_s,
                lambda: self._run_callback(message, plan, index + 1, generation),
            )
        elif plan.reply_body is not None:
            scheduler.call_later(plan.reply_delay_s, lambda: self._reply(message, plan, generation))

    def _apply_status(self, message: _Message, step: _Callback) -> None:
        if _RANK[step.status] <= _RANK[message.status]:
            return  # a late or repeated report never moves the message back
        now = _now()
        message.status = step.status
        message.updated_at = now
        if step.error_code is not None:
            message.error_code = step.error_code
        if step.status in ("delivered", "undelivered"):
            message.done_at = now
        if step.status in ("sent", "delivered", "undelivered") and message.sent_at is None:
            message.sent_at = now
            message.from_ = message.sender
            message.price = _price(self._settings.price_per_segment, message.segments)

    def _reply(self, message: _Message, plan: _Plan, generation: int) -> None:
        if generation != self._generation or self._stop_event.is_set():
            return
        assert plan.reply_body is not None
        inbound = self._record_inbound(
            message.to,
            message.sender,
            plan.reply_body,
            message.messaging_service_sid,
            in_reply_to=message.sid,
        )
        with self._lock:
            message.replies.append(inbound.sid)
        self._post_inbound(inbound, 1, generation)

    def _record_inbound(
        self,
        from_: str,
        to: str,
        body: str,
        service_sid: str | None,
        in_reply_to: str | None,
    ) -> _Message:
        with self._lock:
            settings = self._settings
            now = _now()
            inbound = _Message(
                sid=_new_sid(),
                account_sid=settings.account_sid,
                direction="inbound",
                to=to,
                from_=from_,
                sender=from_,
                body=body,
                segments=max(1, analyse(body).segments),
                status="received",
                created_at=now,
                updated_at=now,
                sent_at=now,
                messaging_service_sid=service_sid,
                carrier=_carrier_for(from_, settings),
                in_reply_to=in_reply_to,
            )
            inbound.price = _price(settings.price_per_segment, inbound.segments)
            self._messages[inbound.sid] = inbound
            self._counters["reply_bodies"][body] += 1
            keyword = body.strip().upper()
            # Twilio blocks per Messaging Service when the sender belongs to one.
            scopes = {to} | ({service_sid} if service_sid else set())
            if keyword in OPT_OUT_KEYWORDS:
                self._opted_out |= {(scope, from_) for scope in scopes}
            elif keyword in OPT_IN_KEYWORDS:
                self._opted_out -= {(scope, from_) for scope in scopes}
            return inbound

    def _post_inbound(self, inbound: _Message, attempt: int, generation: int | None) -> None:
        if generation is None:
            generation = self._generation
        if generation != self._generation or self._stop_event.is_set():
            return
        settings = self._settings
        url = settings.inbound_webhook_url
        if not url:
            return
        with self._lock:
            if attempt == 1:
                inbound.callbacks.append(
                    {
                        "status": "received",
                        "url": url,
                        "attempts": 0,
                        "delivered": False,
                        "dropped": False,
                        "http_status": None,
                        "idempotency_token": uuid.uuid4().hex,
                    }
                )
            record = inbound.callbacks[-1]
            params = _inbound_params(inbound, settings)
        status_code, answer = self._post_signed(url, params, record["idempotency_token"])
        delivered = status_code is not None and 200 <= status_code < 300
        if delivered:
            self._send_twiml_replies(inbound, answer)
        retry = not delivered and attempt <= settings.callback_retries
        with self._lock:
            record.update(attempts=attempt, http_status=status_code, delivered=delivered)
            if delivered:
                self._counters["totals"]["replies_posted"] += 1
            elif not retry:
                record["dropped"] = True
                self._counters["totals"]["replies_dropped"] += 1
        if retry:
            self._require_scheduler().call_later(
                settings.callback_retry_delay_s,
                lambda: self._post_inbound(inbound, attempt + 1, generation),
            )

    def _send_twiml_replies(self, inbound: _Message, answer: str) -> None:
        """Each `<Message>` in the webhook's TwiML answer is sent back to the handset from the
        number it texted, as Twilio does, through the same checks as an API send (a number
        that opted out of that sender gets nothing: 21610)."""
        for body in twiml_messages(answer):
            try:
                self.create_message(inbound.account_sid, {"To": inbound.sender, "From": inbound.to, "Body": body})
            except TwilioError as exc:
                logger.info("carrier simulator: TwiML reply refused: %s", exc.code)
                self._counters_add("twiml_replies_refused")
            else:
                self._counters_add("twiml_replies")

    def _post_signed(self, url: str, params: dict[str, str], idempotency_token: str) -> tuple[int | None, str]:
        """POST a form the way Twilio does; the HTTP status (None if nothing came back) and the
        answer's text."""
        if self._http is None:
            return None, ""
        headers = {
            "X-Twilio-Signature": twilio_signature(self._settings.auth_token, url, params),
            "I-Twilio-Idempotency-Token": idempotency_token,
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
        }
        try:
            response = self._http.post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            logger.info("carrier simulator: webhook POST failed: %s", type(exc).__name__)
            return None, ""
        return response.status_code, response.text


def twiml_messages(answer: str) -> list[str]:
    """The bodies of the `<Message>` verbs in a TwiML `<Response>` (none if it is not TwiML)."""
    try:
        root = ElementTree.fromstring(answer)
    except ElementTree.ParseError:
        return []
    if root.tag != "Response":
        return []
    bodies = []
    for verb in root.iter("Message"):
        body = verb.find("Body")
        text = (body.text if body is not None else verb.text) or ""
        if text.strip():
            bodies.append(text.strip())
    return bodies


def _plan(
    rng: random.Random,
    distribution: Mapping[str, float],
    settings: SimulatorSettings,
    forced_delivery: bool,
    fated_outcome: str | None = None,
) -> _Plan:
    """Draw everything about one message. The draws always happen in the same order, whatever
    the knobs say, so changing one knob never changes the outcomes drawn for another: the
    outcome is drawn even when the number's fate (`fated_outcome`) decides it instead."""
    outcome = _draw_outcome(rng.random(), distribution)
    if fated_outcome is not None:
        outcome = fated_outcome
    if forced_delivery:
        outcome = "delivered"
    first_delay = rng.uniform(*settings.callback_delay_s)
    second_delay = rng.uniform(*settings.callback_delay_s)
    duplicate_first = rng.random() < settings.duplicate_rate
    duplicate_final = rng.random() < settings.duplicate_rate
    swapped = rng.random() < settings.out_of_order_rate
    replies = rng.random() < settings.reply_rate
    reply_delay = rng.uniform(*settings.reply_delay_s)
    reply_body = rng.choice(settings.reply_bodies)

    if outcome.startswith("failed:"):
        steps = [("failed", int(outcome.split(":")[1]), duplicate_final)]
    elif outcome == "sent":
        steps = [("sent", None, duplicate_first)]
    else:
        final = ("delivered", None) if outcome == "delivered" else ("undelivered", int(outcome))
        steps = [("sent", None, duplicate_first), (*final, duplicate_final)]
        if swapped:
            steps.reverse()
    callbacks: list[_Callback] = []
    for position, (status, code, duplicated) in enumerate(steps):
        delay = first_delay if position == 0 else second_delay
        callbacks.append(_Callback(delay, status, code))
        if duplicated:
            callbacks.append(_Callback(0.0, status, code))
    wants_reply = replies and outcome == "delivered" and settings.inbound_webhook_url
    return _Plan(tuple(callbacks), reply_body if wants_reply else None, reply_delay)


def _draw_outcome(roll: float, distribution: Mapping[str, float]) -> str:
    cumulative = 0.0
    for name, share in sorted(distribution.items()):
        cumulative += share
        if roll < cumulative:
            return name
    return "delivered"


def _fate_for(number: str, settings: SimulatorSettings) -> _Fate:
    """A recipient number's fate, the same every time for one seed and number.

    The outcome is drawn from the number's carrier's distribution, so the share of numbers
    fated to fail is that distribution's; the score mostly agrees with the outcome (see
    DELIVERABLE_SCORES); `landline_rate` of numbers are landlines, whatever their outcome and
    score (a landline can be busy with calls; the screen rejects it for its line type). The
    draws happen in a fixed order, so `landline_rate` changes no outcome or score.
    """
    if number == MAGIC_ALWAYS_DELIVERED:
        return _Fate("delivered", 100, landline=False)
    rng = random.Random(_digest(settings.seed, "fate", number))
    outcome = _draw_outcome(rng.random(), settings.carriers[_carrier_for(number, settings)])
    overlaps = rng.random() < SCORE_OVERLAP
    score_roll = rng.random()
    landline = rng.random() < settings.landline_rate or number == MAGIC_NOT_MOBILE
    if outcome == "delivered":
        low, high = (0, DELIVERABLE_SCORES[0] - 1) if overlaps else DELIVERABLE_SCORES
    else:
        low, high = (UNDELIVERABLE_SCORES[1] + 1, 100) if overlaps else UNDELIVERABLE_SCORES
    return _Fate(outcome, low + int(score_roll * (high - low + 1)), landline)


def _line_status(fate: _Fate) -> str:
    """Lookup's `line_status` for a fate: the network's view, in bands of the activity score.
    Line status comes from mobile networks' registers, which hold nothing about a landline."""
    if fate.landline:
        return "unknown"
    for floor, status in LINE_STATUS_BANDS:
        if fate.activity_score >= floor:
            return status
    return "inactive"


def _parse_number(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None


def _validation_error(number: phonenumbers.PhoneNumber) -> str:
    """Lookup v2's `validation_errors` word for a number that parses but is not valid."""
    reason = phonenumbers.is_possible_number_with_reason(number)
    reasons = phonenumbers.ValidationResult
    return {
        reasons.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
        reasons.TOO_SHORT: "TOO_SHORT",
        reasons.TOO_LONG: "TOO_LONG",
        reasons.INVALID_LENGTH: "INVALID_LENGTH",
    }.get(reason, "INVALID_BUT_POSSIBLE")


def _outcome_label(plan: _Plan) -> str:
    finals = [c for c in plan.callbacks if c.status != "sent"]
    if not finals:
        return "sent"
    final = finals[0]
    return final.status if final.error_code is None else f"{final.status}:{final.error_code}"


def _status_params(message: _Message, step: _Callback) -> dict[str, str]:
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "From": message.sender,
        "MessageSid": message.sid,
        "MessageStatus": step.status,
        "SmsSid": message.sid,
        "SmsStatus": step.status,
        "To": message.to,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if step.error_code is not None:
        params["ErrorCode"] = str(step.error_code)
    if step.status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = (message.done_at or _now()).strftime("%y%m%d%H%M")
    return params


def _inbound_params(inbound: _Message, settings: SimulatorSettings) -> dict[str, str]:
    params = {
        "AccountSid": inbound.account_sid,
        "ApiVersion": API_VERSION,
        "Body": inbound.body,
        "From": inbound.sender,
        "FromCity": "",
        "FromCountry": _country(inbound.sender),
        "FromState": "",
        "FromZip": "",
        "MessageSid": inbound.sid,
        "NumMedia": "0",
        "NumSegments": str(inbound.segments),
        "SmsMessageSid": inbound.sid,
        "SmsSid": inbound.sid,
        "SmsStatus": "received",
        "To": inbound.to,
        "ToCity": "",
        "ToCountry": _country(inbound.to),
        "ToState": "",
        "ToZip": "",
    }
    if inbound.messaging_service_sid:
        params["MessagingServiceSid"] = inbound.messaging_service_sid
    return params


def _carrier_for(number: str, settings: SimulatorSettings) -> str:
    names = sorted(settings.carriers)
    return names[int(_digest(settings.seed, "carrier", number), 16) % len(names)]


def _service_sender(to: str, settings: SimulatorSettings) -> str:
    senders = settings.messaging_service_senders
    return senders[int(_digest(settings.seed, "sender", to), 16) % len(senders)]


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "US"
    except phonenumbers.NumberParseException:
        return "US"


def _price(per_segment: str, segments: int) -> str:
    return f"{Decimal(per_segment) * segments:.5f}"


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


# --- HTTP -------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    simulator: CarrierSimulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "CarrierSimulator/1.0"

    @property
    def simulator(self) -> CarrierSimulator:
        return self.server.simulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("carrier simulator: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if parts.path.startswith("/_sim/"):
                self._admin(method, parts.path)
                return
            if parts.path == _PHONE_INTEL_PATH:
                self._phone_intel(method, query)
                return
            lookup = _LOOKUP_PATH.match(parts.path)
            if lookup:
                if not self.simulator.check_credentials(self.headers.get("Authorization")):
                    self._send_json(401, TwilioError(401, 20003).body(), authenticate=True)
                elif method != "GET":
                    raise TwilioError(405, 20004)
                else:
                    number = unquote(lookup["number"])
                    resource = self.simulator.lookup_phone_number(number, query.get("Fields", ""))
                    self._send_json(200, resource)
                return
            messages = _MESSAGES_PATH.match(parts.path)
            message = _MESSAGE_PATH.match(parts.path)
            if not (messages or message):
                raise TwilioError(404, 20404, path=parts.path)
            if not self.simulator.check_credentials(self.headers.get("Authorization")):
                self._send_json(401, TwilioError(401, 20003).body(), authenticate=True)
                return
            if messages and method == "POST":
                body = self._read_body().decode(errors="replace")
                form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
                self._send_json(201, self.simulator.create_message(messages["account"], form))
            elif messages and method == "GET":
                self._send_json(200, self.simulator.list_messages(messages["account"], query))
            elif message and method == "GET":
                resource = self.simulator.fetch_message(message["account"], message["sid"])
                self._send_json(200, resource)
            else:
                raise TwilioError(405, 20004)
        except TwilioError as error:
            self._send_json(error.status, error.body())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a simulated timeout does exactly that)

    def _phone_intel(self, method: str, query: Mapping[str, str]) -> None:
        try:
            if method != "GET":
                raise PhoneIntelError(405, "MethodNotAllowed", f"{method} is not supported")
            answer = self.simulator.phone_intel(self.headers.get("x-api-key"), query)
        except PhoneIntelError as error:
            self._send_json(error.status, error.body())
            return
        self._send_json(200, answer)

    def _admin(self, method: str, path: str) -> None:
        sim = self.simulator
        if (method, path) == ("GET", "/_sim/messages"):
            self._send_json(200, {"messages": sim.messages()})
        elif (method, path) == ("GET", "/_sim/stats"):
            self._send_json(200, sim.stats())
        elif (method, path) == ("POST", "/_sim/reset"):
            sim.reset()
            self._send_json(200, {"reset": True})
        elif (method, path) == ("POST", "/_sim/config"):
            try:
                changes = json.loads(self._read_body() or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                settings = sim.configure(**changes)
            except ValidationError as exc:
                errors = [
                    {"field": ".".join(map(str, e["loc"])), "reason": e["msg"]}
                    for e in exc.errors()
                ]
                self._send_json(400, {"errors": errors})
                return
            except ValueError as exc:
                self._send_json(400, {"errors": [{"field": "body", "reason": str(exc)}]})
                return
            self._send_json(200, settings.model_dump(mode="json"))
        elif (method, path) == ("POST", "/_sim/inbound"):
            try:
                payload = json.loads(self._read_body() or b"{}")
                sid = sim.inject_inbound(
                    payload["from"],
                    payload["to"],
                    payload["body"],
                    payload.get("messaging_service_sid"),
                )
            except (ValueError, KeyError, TypeError) as exc:
                reason = f"needs from, to (E.164) and body: {exc}"
                self._send_json(400, {"errors": [{"field": "body", "reason": reason}]})
                return
            self._send_json(202, {"sid": sid})
        else:
            self._send_json(404, {"errors": [{"field": "path", "reason": f"no {method} {path}"}]})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            # Far beyond any 1,600-character body: answer as Twilio does for an overlong one.
            raise TwilioError(400, 21617)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, authenticate: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if authenticate:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(data)


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.carrier_sim",
        description="A local carrier that speaks Twilio's Messages API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--inbound-webhook-url")
    parser.add_argument(
        "--settings",
        help="JSON object of SimulatorSettings fields, or @path to a JSON file",
    )
    args = parser.parse_args(argv)

    values: dict[str, Any] = {}
    if args.settings:
        text = args.settings
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        values.update(json.loads(text))
    if args.seed is not None:
        values["seed"] = args.seed
    if args.inbound_webhook_url:
        values["inbound_webhook_url"] = args.inbound_webhook_url
    try:
        settings = SimulatorSettings.model_validate(values)
    except ValidationError as exc:
        parser.error(str(exc))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = CarrierSimulator(settings)
    url = simulator.start(args.host, args.port)
    print(f"carrier simulator on {url}  account {settings.account_sid}")
    print(f"  TWILIO_API_BASE={url}  admin: {url}/_sim/stats  {url}/_sim/messages", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
