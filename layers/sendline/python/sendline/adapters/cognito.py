"""Operators' Cognito tokens, verified inside the function.

API Gateway's JWT authorizer guards the operator-only routes. The routes operators share with
integrators (`api_key_or_operator` in infra/spec.py) have no authorizer, since an integrator's
API key is no JWT, so the function checks an operator's token itself, as the authorizer would:

- RS256 only, signed by one of the user pool's keys (`<issuer>/.well-known/jwks.json`), picked
  by the token's `kid`; `alg: none`, HS256 (a token "signed" with the public key) and every
  other algorithm are refused before any key is looked at;
- `iss` is the pool; `exp` has not passed and `iat`/`nbf` are not in the future (30 s leeway
  for clocks that disagree);
- an access token (`token_use` "access") names the app client in `client_id`, an ID token
  (`token_use` "id") in `aud`; refresh tokens and other pools' or clients' tokens are refused.

Like the gateway's authorizer, this is an offline check: a token revoked in Cognito (sign-out
everywhere) stays usable until it expires.

The pool's keys are fetched once per execution environment and kept. A token whose `kid` is not
among them triggers a new fetch (keys rotate), and so does a key set older than an hour; either
way at most one fetch per `FETCH_INTERVAL_S`, so tokens with made-up `kid`s cannot make every
request call Cognito. A refresh that fails keeps the keys already held. When no key can vouch
for a token because the key set could not be fetched, the answer is `KeysUnavailable`, not a
refusal: the token may be perfectly good, and a refusal would sign the operator out.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:  # jwt, cryptography and httpx load on the first token, not at cold start
    import httpx
    from jwt import PyJWK

JWKS_PATH = "/.well-known/jwks.json"
ALGORITHM = "RS256"
LEEWAY_S = 30
FETCH_INTERVAL_S = 10  # at most one key-set fetch per interval per execution environment
KEYS_MAX_AGE_S = 3600

logger = Logger(child=True)

EXPIRED = "expired: sign in again"
NOT_SIGNED = "not signed by this user pool"
NOT_ISSUED = "not issued by this user pool"
NOT_FOR_CLIENT = "not issued for this app client"
NOT_YET_VALID = "not valid yet"
MALFORMED = "not a valid token"

# Three base64url parts: header, payload, signature (empty for `alg: none`).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenRejected(Exception):
    """The token is not a good operator token; `reason` is safe to show the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The pool's keys could not be fetched, so the token could be neither accepted nor refused.
    `retry_after_s`: when the next fetch may be tried."""

    def __init__(self, retry_after_s: int):
        super().__init__("the user pool's signing keys could not be fetched")
        self.retry_after_s = retry_after_s


class KeySetFetchFailed(Exception):
    """The key set endpoint gave no usable answer."""


@dataclass(frozen=True)
class OperatorClaims:
    """Who the token says the operator is."""

    subject: str
    username: str | None
    token_use: str


def looks_like_jwt(token: str) -> bool:
    return _COMPACT_JWS.fullmatch(token) is not None


@lru_cache(maxsize=1)
def key_set_http() -> httpx.Client:
    """The HTTP client for the key set: short timeouts, as a request waits for it."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(connect=2.0, read=3.0, write=3.0, pool=2.0))


def fetch_key_set(url: str) -> Mapping[str, Any]:
    import httpx

    try:
        response = key_set_http().get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise KeySetFetchFailed(type(exc).__name__) from None
    if response.status_code != 200:
        raise KeySetFetchFailed(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise KeySetFetchFailed("not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise KeySetFetchFailed("no keys list")
    return body


class PoolKeys:
    """A user pool's RS256 signing keys by `kid`, fetched when needed (see the module's notes).

    `fetch(url)` returns the JWKS document or raises `KeySetFetchFailed`; times are the `now`
    each call is given, so tests move the clock instead of sleeping.
    """

    def __init__(self, jwks_url: str, fetch: Callable[[str], Mapping[str, Any]] = fetch_key_set):
        self.jwks_url = jwks_url
        self._fetch = fetch
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = 0.0  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._last_failed = False
        self._lock = threading.Lock()

    def signing_key(self, kid: str, now: datetime) -> PyJWK | None:
        """The key with this id, or None if the pool has none; `KeysUnavailable` when the key
        set could not be fetched to tell."""
        moment = now.timestamp()
        with self._lock:
            if self._keys is None or moment - self._fetched_at >= KEYS_MAX_AGE_S or kid not in self._keys:
                self._refresh(moment)
            if self._keys is not None and kid in self._keys:
                return self._keys[kid]
            if self._last_failed:
                raise KeysUnavailable(self._retry_after(moment))
            return None

    def _refresh(self, moment: float) -> None:
        if self._tried_at is not None and moment - self._tried_at < FETCH_INTERVAL_S:
            return
        self._tried_at = moment
        try:
            keys = _signing_keys(self._fetch(self.jwks_url))
        except KeySetFetchFailed as exc:
            logger.warning("user pool keys not fetched", extra={"reason": str(exc)})
            self._last_failed = True
            return
        self._keys, self._fetched_at, self._last_failed = keys, moment, False

    def _retry_after(self, moment: float) -> int:
        waited = moment - (self._tried_at or moment)
        return max(1, math.ceil(FETCH_INTERVAL_S - waited))


def _signing_keys(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    """The RSA signing keys of a JWKS document, each bound to RS256 whatever else it says."""
    from jwt import PyJWK, PyJWTError

    keys: dict[str, PyJWK] = {}
    for entry in document.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = PyJWK(entry, algorithm=ALGORITHM)
        except PyJWTError:
            continue
    if not keys:
        raise KeySetFetchFailed("no RS256 signing keys")
    return keys


class CognitoTokens:
    """Verifies operators' Cognito access and ID tokens for one user pool and app client."""

    def __init__(self, issuer: str, client_id: str, keys: PoolKeys | None = None):
        self.issuer = issuer
        self.client_id = client_id
        self.keys = keys or PoolKeys(issuer + JWKS_PATH)

    def verify(self, token: str, now: datetime) -> OperatorClaims:
        """The operator's claims, or `TokenRejected` with a short reason (`KeysUnavailable` when
        the pool's keys could not be fetched)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise TokenRejected(MALFORMED) from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
            raise TokenRejected(NOT_SIGNED)
        key = self.keys.signing_key(kid, now)
        if key is None:
            raise TokenRejected(NOT_SIGNED)
        try:
            # Times are checked below against `now`, the audience by token type.
            claims = jwt.decode(token, key=key, algorithms=[ALGORITHM], options={
                "verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                "verify_iss": False, "require": ["exp", "iat", "iss", "sub", "token_use"]})
        except jwt.MissingRequiredClaimError:
            raise TokenRejected(MALFORMED) from None
        except jwt.InvalidSignatureError:
            raise TokenRejected(NOT_SIGNED) from None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise TokenRejected(MALFORMED) from None
        return self._check_claims(claims, now.timestamp())

    def _check_claims(self, claims: Mapping[str, Any], moment: float) -> OperatorClaims:
        if claims.get("iss") != self.issuer:
            raise TokenRejected(NOT_ISSUED)
        token_use = claims.get("token_use")
        audience = {"access": claims.get("client_id"), "id": claims.get("aud")}.get(token_use)  # type: ignore[arg-type]
        if audience != self.client_id:
            raise TokenRejected(NOT_FOR_CLIENT)
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
        if not (_is_epoch(exp) and _is_epoch(iat) and _is_epoch(nbf)):
            raise TokenRejected(MALFORMED)
        if exp <= moment - LEEWAY_S:
            raise TokenRejected(EXPIRED)
        if max(iat, nbf) > moment + LEEWAY_S:
            raise TokenRejected(NOT_YET_VALID)
        username = claims.get("username") or claims.get("cognito:username")
        return OperatorClaims(subject=str(claims["sub"]), username=username if isinstance(username, str) else None,
                              token_use=str(token_use))


def _is_epoch(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@lru_cache(maxsize=4)
def operator_tokens(issuer: str, client_id: str) -> CognitoTokens:
    """One verifier, and so one key cache, per pool and client in an execution environment."""
    return CognitoTokens(issuer, client_id)


def reset() -> None:
    """Forget the verifiers and their keys (tests change the pool between cases)."""
    operator_tokens.cache_clear()
    key_set_http.cache_clear()
