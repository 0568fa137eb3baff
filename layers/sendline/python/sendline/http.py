"""What every HTTP function shares: one error-to-HTTP mapping, body parsing, and who is calling.

Handlers build their resolver with `make_resolver()` and call `json_body()`, `api_identity()`
or `require_operator()`; business rules stay in the services.

Who is calling:
- an integrator, by API key (`X-API-Key` or `?api_key=`; never the Authorization header), within
  its rate limit;
- an operator, by `Authorization: Bearer <token>`. On AWS the operator-only routes sit behind
  API Gateway's JWT authorizer, which has checked the Cognito token already. The routes shared
  with integrators have no authorizer, so there a token that looks like a JWT is verified here
  against the user pool (COGNITO_ISSUER, COGNITO_CLIENT_ID; adapters/cognito.py). Any other
  bearer token is compared with the static operator token (OPERATOR_TOKEN_SHA256; the local
  stack's login, off when unset).

A refused operator token is a 401 naming `authorization` with a short reason ("expired: sign in
again", "not signed by this user pool"...), never more detail than that. When the pool's keys
cannot be fetched the token can be neither accepted nor refused: that is a 503 with Retry-After,
not a 401, so the dashboard retries instead of signing a good operator out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response, content_types

from sendline import config, runtime
from sendline.adapters import cognito
from sendline.domain.clock import utcnow
from sendline.domain.signatures import is_valid_twilio_signature
from sendline.errors import (
    FieldProblem,
    Forbidden,
    MalformedRequest,
    PayloadTooLarge,
    RateLimited,
    SendlineError,
    Unauthorized,
    ValidationFailed,
)
from sendline.services.api_keys import ApiIdentity, authenticate
from sendline.services.leads import RequestOrigin, SubmitResult, submit_lead
from sendline.services.rate_limit import RateWindow, enforce_rate_limit

logger = Logger(child=True)

MAX_BODY_BYTES = 64 * 1024
CORS = CORSConfig(allow_origin="*", allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"],
                  expose_headers=["X-Next-Cursor"], max_age=600)


class OperatorLoginUnavailable(SendlineError):
    """An operator's token could not be checked now (the user pool's keys are out of reach)."""

    status_code = 503
    code = "auth_unavailable"

    def __init__(self, retry_after_s: int):
        super().__init__(FieldProblem("authorization", "could not be checked just now; try again shortly"))
        self.retry_after_s = retry_after_s


def error_body(error: SendlineError) -> dict[str, Any]:
    return {"success": False, "error": str(error), "code": error.code,
            "errors": [{"field": p.field, "reason": p.reason} for p in error.problems]}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body, ensure_ascii=False, default=str), headers=headers or {})


def make_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(cors=CORS)

    @app.exception_handler(SendlineError)
    def _domain_error(error: SendlineError) -> Response:
        headers = {}
        if isinstance(error, RateLimited):
            headers = {"Retry-After": str(error.retry_after_s), "X-RateLimit-Limit": str(error.limit),
                       "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(error.retry_after_s)}
        elif isinstance(error, OperatorLoginUnavailable):
            headers = {"Retry-After": str(error.retry_after_s)}
        return json_response(error.status_code, error_body(error), headers)

    @app.not_found
    def _no_route(_: Exception) -> Response:
        return json_response(404, {"success": False, "error": "route: no such endpoint", "code": "not_found",
                                   "errors": [{"field": "route", "reason": "no such endpoint"}]})

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return json_response(500, {"success": False, "error": "internal error", "code": "internal_error",
                                   "request_id": app.current_event.request_context.request_id})

    return app


def body_text(app: APIGatewayHttpResolver) -> str:
    """The request body as text; a body that is not UTF-8 is the client's mistake (400), not
    ours."""
    try:
        return app.current_event.decoded_body or ""
    except UnicodeDecodeError:
        raise MalformedRequest(FieldProblem("body", "is not valid UTF-8")) from None


def json_body(app: APIGatewayHttpResolver) -> Any:
    """The request's JSON body, or a 4xx that says what is wrong with it."""
    raw = body_text(app)
    size = len(raw.encode("utf-8", errors="replace"))
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(FieldProblem("body", f"larger than {MAX_BODY_BYTES // 1024} KB"))
    if not raw.strip():
        raise MalformedRequest(FieldProblem("body", "is empty; send a JSON object"))
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        reason = f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise MalformedRequest(FieldProblem("body", reason)) from None
    except RecursionError:
        raise MalformedRequest(FieldProblem("body", "nests arrays or objects too deeply")) from None


def payload(app: APIGatewayHttpResolver) -> Any:
    """A JSON body, or a form-encoded one as older integrations post it."""
    content_type = (header(app, "content-type") or "").lower()
    body = body_text(app).lstrip()
    # `curl -d '{...}'` labels JSON as a form; the body itself says what it is.
    if content_type.startswith("application/x-www-form-urlencoded") and not body.startswith(("{", "[")):
        return dict(parse_qsl(body, keep_blank_values=True))
    return json_body(app)


def request_origin(app: APIGatewayHttpResolver) -> RequestOrigin:
    context = app.current_event.request_context.http
    key = (header(app, "idempotency-key") or "").strip()[:200] or None
    return RequestOrigin(ip=context.source_ip, user_agent=context.user_agent, idempotency_key=key)


def twilio_form(app: APIGatewayHttpResolver) -> dict[str, str]:
    """The posted form of a Twilio webhook, after checking X-Twilio-Signature (403 if wrong)."""
    event = app.current_event
    pairs = parse_qsl(body_text(app), keep_blank_values=True)
    scheme = header(app, "x-forwarded-proto") or "https"
    host = header(app, "host") or event.request_context.domain_name
    url = f"{scheme}://{host}{event.raw_event.get('rawPath', event.path)}"
    if event.raw_event.get("rawQueryString"):
        url += "?" + event.raw_event["rawQueryString"]
    _, auth_token = runtime.twilio_credentials()
    if not is_valid_twilio_signature(auth_token, url, pairs, header(app, "x-twilio-signature")):
        raise Forbidden(FieldProblem("X-Twilio-Signature", "missing or does not match the request"))
    return dict(pairs)


def submit_lead_request(app: APIGatewayHttpResolver) -> tuple[SubmitResult, Response]:
    """A lead as integrators post it, on either route: key, rate limit, body, submission."""
    identity, window = api_identity(app)
    result = submit_lead(runtime.records(), runtime.send_queue(), payload(app), identity, request_origin(app),
                         utcnow())
    return result, json_response(200, result.to_response(), window.headers())


MAX_INLINE_CSV = 5 * 1024 * 1024  # a CSV file posted as the request's body


def csv_body(app: APIGatewayHttpResolver, too_large: str) -> bytes | None:
    """The CSV file the request carries as its body, or None when it has none; over 5 MB it is
    a 413 whose reason is `too_large`."""
    event = app.current_event
    if not event.body:
        return None
    raw = base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode("utf-8")
    if len(raw) > MAX_INLINE_CSV:
        raise PayloadTooLarge(FieldProblem("body", too_large))
    return raw


def csv_download(body: str | Iterable[str], filename: str) -> Response:
    """A CSV file to save. `body` may be the file's lines as they are produced: they are joined
    here, as a Lambda response is sent whole (an export caps its size: services/message_log.py)."""
    text = body if isinstance(body, str) else "".join(body)
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=text,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def int_param(app: APIGatewayHttpResolver, name: str, *, default: int, low: int, high: int) -> int:
    raw = app.current_event.get_query_string_value(name)
    if raw is None or raw == "":
        return default
    if not (raw.strip().isascii() and raw.strip().isdigit()) or not low <= int(raw) <= high:
        raise ValidationFailed(FieldProblem(name, f"must be a whole number from {low} to {high}"))
    return int(raw)


def query(app: APIGatewayHttpResolver, allowed: Iterable[str], *, what: str = "report") -> dict[str, str]:
    """The query string, refusing names the route does not know (a misspelt filter would
    otherwise widen a report silently). `what` names the route in the refusal."""
    given = dict(app.current_event.query_string_parameters or {})
    known = set(allowed)
    for name in sorted(given):
        if name not in known:
            use = f"use {', '.join(sorted(known))}" if known else f"this {what} takes none"
            raise ValidationFailed(FieldProblem(name, f"is not a parameter of this {what}; {use}"))
    return given


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    return headers.get(name.lower()) or headers.get(name)


def api_identity(app: APIGatewayHttpResolver) -> tuple[ApiIdentity, RateWindow]:
    """The integrator behind the request (X-API-Key or ?api_key=), within its rate limit."""
    now = utcnow()
    identity = authenticate(runtime.records(), _presented_api_key(app), now)
    window = enforce_rate_limit(runtime.records(), identity.key_id, now)
    return identity, window


def _presented_api_key(app: APIGatewayHttpResolver) -> str | None:
    return header(app, "x-api-key") or (app.current_event.query_string_parameters or {}).get("api_key")


ASK_FOR_OPERATOR_TOKEN = "send the operator token as 'Authorization: Bearer <token>'"


@dataclass(frozen=True)
class OperatorCheck:
    """Whether the request comes from an operator; `refusal` says why a token it presented was
    refused (None when it presented none)."""

    accepted: bool
    refusal: Unauthorized | None = None


def check_operator(app: APIGatewayHttpResolver) -> OperatorCheck:
    # Deployed behind a JWT authorizer, API Gateway has already verified the operator's token.
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if authorizer.get("jwt", {}).get("claims"):
        return OperatorCheck(True)
    auth = header(app, "authorization") or ""
    if not auth.lower().startswith("bearer "):
        return OperatorCheck(False)
    token = auth[7:].strip()
    settings = config.api_settings()
    if settings.cognito_issuer and settings.cognito_client_id and cognito.looks_like_jwt(token):
        verifier = cognito.operator_tokens(settings.cognito_issuer, settings.cognito_client_id)
        try:
            verifier.verify(token, utcnow())
        except cognito.TokenRejected as exc:
            logger.info("operator token refused", extra={"reason": exc.reason})
            return OperatorCheck(False, Unauthorized(FieldProblem("authorization", exc.reason)))
        except cognito.KeysUnavailable as exc:
            raise OperatorLoginUnavailable(exc.retry_after_s) from None
        return OperatorCheck(True)
    expected = settings.operator_token_sha256
    presented = hashlib.sha256(token.encode()).hexdigest()
    if expected and hmac.compare_digest(presented, expected):
        return OperatorCheck(True)
    return OperatorCheck(False, Unauthorized(FieldProblem("authorization", ASK_FOR_OPERATOR_TOKEN)))


def is_operator(app: APIGatewayHttpResolver) -> bool:
    return check_operator(app).accepted


def require_operator(app: APIGatewayHttpResolver) -> None:
    check = check_operator(app)
    if not check.accepted:
        raise check.refusal or Unauthorized(FieldProblem("authorization", ASK_FOR_OPERATOR_TOKEN))


@dataclass(frozen=True)
class Caller:
    """Who made a request that operators and integrators may both make."""

    kind: str  # "operator" or "api"
    headers: dict[str, str]  # rate-limit headers for integrators, none for operators


def require_operator_or_api_key(app: APIGatewayHttpResolver) -> Caller:
    """An operator (bearer token) or an integrator (API key). A request with an API key is judged
    by the key when its bearer token is not an operator's (or cannot be checked now); one without
    is refused naming `authorization` when it presented a token, `api_key` when it presented
    nothing."""
    try:
        check = check_operator(app)
    except OperatorLoginUnavailable:
        if not _presented_api_key(app):
            raise
        check = OperatorCheck(False)
    if check.accepted:
        return Caller("operator", {})
    if check.refusal is not None and not _presented_api_key(app):
        raise check.refusal
    _, window = api_identity(app)
    return Caller("api", window.headers())
