"""Twilio's Messages API over httpx: what we send, and what each kind of answer means for us."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx


@dataclass(frozen=True)
class Accepted:
    provider_sid: str
    provider_status: str
    segments: int
    price: str | None


@dataclass(frozen=True)
class Rejected:
    """The carrier refused the message for good (e.g. 21211 invalid number): never retry."""

    error_code: str
    error_message: str
    http_status: int


@dataclass(frozen=True)
class TryLater:
    """Nothing was sent (429, 5xx, connection refused): safe to retry after `retry_after_s`."""

    reason: str
    error_code: str | None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class OutcomeUnknown:
    """The request may have reached the carrier but no answer came back (read timeout)."""

    reason: str


SendOutcome = Accepted | Rejected | TryLater | OutcomeUnknown


def price_to_micros(price: str | None) -> int:
    """Twilio prices are negative strings ("-0.00790"); we keep cost as positive micro-dollars."""
    if not price:
        return 0
    try:
        return abs(int(Decimal(price) * 1_000_000))
    except InvalidOperation:
        return 0


class TwilioMessages:
    def __init__(self, client: httpx.Client, api_base: str, account_sid: str, auth_token: str,
                 status_callback_url: str | None):
        self._http = client
        self._url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (account_sid, auth_token)
        self._callback = status_callback_url

    def send(self, *, to: str, from_: str, body: str) -> SendOutcome:
        form = {"To": to, "From": from_, "Body": body}
        if self._callback:
            form["StatusCallback"] = self._callback
        try:
            response = self._http.post(self._url, data=form, auth=self._auth)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return TryLater(reason=f"connection failed: {type(exc).__name__}", error_code=None)
        except httpx.TransportError as exc:
            # The request left us; whether Twilio acted on it is unknowable.
            return OutcomeUnknown(reason=type(exc).__name__)
        return self._interpret(response)

    @staticmethod
    def _interpret(response: httpx.Response) -> SendOutcome:
        payload: dict[str, Any]
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code in (200, 201):
            if not payload.get("sid"):
                return OutcomeUnknown(reason="accepted without a message sid")
            return Accepted(
                provider_sid=payload["sid"],
                provider_status=str(payload.get("status") or "queued"),
                segments=int(payload.get("num_segments") or 1),
                price=payload.get("price"),
            )
        code = str(payload.get("code")) if payload.get("code") is not None else None
        message = str(payload.get("message") or response.reason_phrase)
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            return TryLater(reason=f"HTTP {response.status_code}: {message}", error_code=code,
                            retry_after_s=int(retry_after) if retry_after and retry_after.isdigit() else None)
        return Rejected(error_code=code or f"http_{response.status_code}", error_message=message,
                        http_status=response.status_code)
