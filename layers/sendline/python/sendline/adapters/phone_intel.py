"""Phone validation providers over httpx: an activity score and a line type for a number.

Two providers answer the same question in different shapes:

- `ActivityScoreLookup`: the Trestle-style Phone Validation API (`GET /3.0/phone_intel`), whose
  `activity_score` (0-100) predicts whether anyone still uses the number.
- `TwilioLineTypeLookup`: Twilio Lookup v2 (`GET /v2/PhoneNumbers/{E164}`), whose
  `line_type_intelligence` says mobile, landline, VoIP...; it has no activity score, only the
  optional `line_status` package, mapped here to a coarse stand-in.

Both return a `PhoneIntel` or raise `LookupFailed`, whose `retryable` says whether asking again
later can help (429, 5xx, timeouts, a garbled body) or not (bad credentials, a refused number).
Timeouts are the httpx client's, so the caller decides how long a lookup may take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from sendline.domain.phones import mask_phone

ACTIVITY_SCORE_PROVIDER = "activity_score_api"
TWILIO_LOOKUP_PROVIDER = "twilio_lookup_v2"

# Both providers' line types, keyed without case or separators, onto one vocabulary. VoIP is one
# type for us whether fixed (tied to an address) or not: both can receive texts.
_LINE_TYPES = {
    "mobile": "mobile",
    "landline": "landline",
    "fixedvoip": "voip",
    "nonfixedvoip": "voip",
    "voip": "voip",
    "tollfree": "toll_free",
    "premium": "premium",
    "sharedcost": "shared_cost",
    "uan": "uan",
    "voicemail": "voicemail",
    "pager": "pager",
    "personal": "personal",
    "unknown": "unknown",
}

# Twilio's `line_status` is a carrier network state, not an activity history: this turns it into
# a number on the activity score's scale only coarsely, so that one score rule can screen leads
# whichever provider answered. "unknown" says nothing, so it scores nothing.
LINE_STATUS_SCORES: dict[str, int | None] = {
    "active": 80,
    "reachable": 60,
    "unknown": None,
    "unreachable": 20,
    "inactive": 5,
}

# Anything that looks like a phone number in a provider's message (Twilio's 404 repeats the
# path, number included); masked before the message goes into an exception or a log.
_PHONE_LIKE = re.compile(r"(?:\+|%2B)?\d{7,15}")


@dataclass(frozen=True)
class PhoneIntel:
    """What a provider knows about a number. `line_type` uses `normalise_line_type`'s words;
    `activity_score` (0-100) is None when the provider gave none."""

    phone: str
    valid: bool
    activity_score: int | None
    line_type: str | None
    carrier: str | None
    provider: str


class LookupFailed(Exception):
    """The provider gave no usable answer. `retryable`: asking again later may work."""

    def __init__(self, reason: str, *, retryable: bool, http_status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status


def normalise_line_type(value: object) -> str | None:
    """A provider's line type in our words: both "NonFixedVOIP" and "nonFixedVoip" are "voip";
    a type we do not know is "unknown"; no type at all is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    key = value.replace("_", "").replace("-", "").replace(" ", "").lower()
    return _LINE_TYPES.get(key, "unknown")


class ActivityScoreLookup:
    """The Trestle-style Phone Validation API: `x-api-key` header, US numbers by default."""

    def __init__(self, client: httpx.Client, base_url: str, api_key: str):
        self._http = client
        self._url = f"{base_url.rstrip('/')}/3.0/phone_intel"
        self._headers = {"x-api-key": api_key}

    def lookup(self, phone: str) -> PhoneIntel:
        params = {"phone": phone, "phone.country_hint": "US"}
        response = _get(self._http, self._url, params=params, headers=self._headers)
        payload = _json_object(response)
        valid = payload.get("is_valid")
        if not isinstance(valid, bool):
            # The provider documents an `error` (InternalError: "Could not retrieve entire
            # response") that comes with an incomplete answer; without validity it is no answer.
            raise LookupFailed(
                f"incomplete answer: {_provider_message(payload) or 'no is_valid'}",
                retryable=True,
                http_status=response.status_code,
            )
        return PhoneIntel(
            phone=phone,
            valid=valid,
            activity_score=_score(payload.get("activity_score"), response),
            line_type=normalise_line_type(payload.get("line_type")),
            carrier=_text(payload.get("carrier")),
            provider=ACTIVITY_SCORE_PROVIDER,
        )


class TwilioLineTypeLookup:
    """Twilio Lookup v2 with the `line_type_intelligence` package, and `line_status` if asked
    for (a beta package billed per request) as the activity score's stand-in."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        account_sid: str,
        auth_token: str,
        *,
        with_line_status: bool = False,
    ):
        self._http = client
        self._base = f"{base_url.rstrip('/')}/v2/PhoneNumbers"
        self._auth = (account_sid, auth_token)
        self._with_line_status = with_line_status
        self._fields = "line_type_intelligence" + (",line_status" if with_line_status else "")

    def lookup(self, phone: str) -> PhoneIntel:
        response = _get(
            self._http, f"{self._base}/{phone}", params={"Fields": self._fields}, auth=self._auth
        )
        payload = _json_object(response)
        valid = payload.get("valid")
        if not isinstance(valid, bool):
            raise _malformed("no valid flag", response)
        line_type_intelligence = _package(payload, "line_type_intelligence", response)
        activity_score = None
        if self._with_line_status:
            line_status = _package(payload, "line_status", response)
            status = _text(line_status.get("status"))
            activity_score = LINE_STATUS_SCORES.get(status.lower()) if status else None
        return PhoneIntel(
            phone=phone,
            valid=valid,
            activity_score=activity_score,
            line_type=normalise_line_type(line_type_intelligence.get("type")),
            carrier=_text(line_type_intelligence.get("carrier_name")),
            provider=TWILIO_LOOKUP_PROVIDER,
        )


# --- shared HTTP handling -----------------------------------------------------------------------


def _get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """GET, or LookupFailed for a transport error or a refusal. Only the exception's type goes
    into the reason: httpx's messages can repeat the URL, and the URL holds the number."""
    try:
        response = client.get(url, **kwargs)
    except httpx.TransportError as exc:
        raise LookupFailed(f"transport error: {type(exc).__name__}", retryable=True) from None
    status = response.status_code
    if status == 200:
        return response
    try:
        payload = response.json()
    except ValueError:
        payload = None
    code = payload.get("code") if isinstance(payload, dict) else None
    message = _provider_message(payload)
    detail = " ".join(str(part) for part in (code, message) if part) or response.reason_phrase
    # 400, 401, 403, 404 and the like say the same thing however often they are asked.
    retryable = status in (408, 429) or status >= 500
    raise LookupFailed(f"HTTP {status}: {_scrub(detail)}", retryable=retryable, http_status=status)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        # A proxy's error page or a cut-off body: the provider itself may well answer next time.
        raise _malformed("not a JSON object", response)
    return payload


def _provider_message(payload: Any) -> str | None:
    """The provider's own words, numbers masked: Trestle's `error.message`, Twilio's `message`."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        text = _text(error.get("message")) or _text(error.get("name"))
    else:
        text = _text(error)
    text = text or _text(payload.get("message"))
    return _scrub(text) if text else None


def _score(value: object, response: httpx.Response) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _malformed("activity_score is not an integer from 0 to 100", response)
    return value


def _package(payload: dict[str, Any], name: str, response: httpx.Response) -> dict[str, Any]:
    """One Lookup v2 data package; null (an invalid number has none) reads as empty."""
    package = payload.get(name)
    if package is None:
        return {}
    if not isinstance(package, dict):
        raise _malformed(f"{name} is not an object", response)
    return package


def _malformed(what: str, response: httpx.Response) -> LookupFailed:
    return LookupFailed(
        f"malformed answer: {what}", retryable=True, http_status=response.status_code
    )


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _scrub(text: str) -> str:
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group(0).replace("%2B", "+")), text)
