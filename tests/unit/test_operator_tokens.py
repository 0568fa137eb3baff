"""Operators' Cognito tokens checked in the function: what is accepted, what is refused and why,
and how the user pool's keys are fetched and kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sendline import config
from sendline.adapters import cognito
from sendline.adapters.cognito import (
    CognitoTokens,
    KeySetFetchFailed,
    KeysUnavailable,
    OperatorClaims,
    PoolKeys,
    TokenRejected,
    fetch_key_set,
    looks_like_jwt,
)

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Op3rat0rs"
CLIENT_ID = "5u1t3c113nt1d0p3rat0rs"
KID = "pool-key-1"
NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)

_PRIVATE_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def private_key(name: str = "pool") -> rsa.RSAPrivateKey:
    """An RSA key per name, made once per test run (2048 bits, as Cognito's)."""
    if name not in _PRIVATE_KEYS:
        _PRIVATE_KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _PRIVATE_KEYS[name]


def public_jwk(kid: str = KID, key_name: str = "pool") -> dict[str, Any]:
    """The key as the pool's jwks.json lists it."""
    jwk = RSAAlgorithm.to_jwk(private_key(key_name).public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def key_set(*kids: str) -> dict[str, Any]:
    return {"keys": [public_jwk(kid) for kid in (kids or (KID,))]}


def claims(kind: str = "access", now: datetime = NOW, **overrides: Any) -> dict[str, Any]:
    """The claims Cognito puts in an access or an ID token issued at `now` for an hour; an
    override of None leaves the claim out."""
    issued = int(now.timestamp())
    common = {"sub": "0f6c2c8e-operator", "iss": ISSUER, "iat": issued, "auth_time": issued,
              "exp": issued + 3600, "token_use": kind, "jti": "a1b2c3", "origin_jti": "d4e5f6"}
    if kind == "id":
        common |= {"aud": CLIENT_ID, "cognito:username": "ops-ann", "email": "ann@example.com"}
    else:
        common |= {"client_id": CLIENT_ID, "username": "ops-ann", "scope": "aws.cognito.signin.user.admin"}
    return {k: v for k, v in (common | overrides).items() if v is not None}


def sign(payload: dict[str, Any], kid: str = KID, key_name: str = "pool") -> str:
    pem = private_key(key_name).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    return jwt.encode(payload, pem, algorithm="RS256", headers={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token with any header, HMAC-signed with `secret` (or unsigned when None)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def public_pem() -> bytes:
    return private_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)


def tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64url(json.dumps(body | changes).encode())}.{signature}"


class FakeKeySetEndpoint:
    """The pool's jwks.json: counts fetches; `document` may be swapped, `failure` makes it fail."""

    def __init__(self, document: dict[str, Any] | None = None):
        self.document = document or key_set()
        self.failure: str | None = None
        self.fetches: list[str] = []

    def __call__(self, url: str) -> dict[str, Any]:
        self.fetches.append(url)
        if self.failure:
            raise KeySetFetchFailed(self.failure)
        return self.document


@pytest.fixture
def endpoint() -> FakeKeySetEndpoint:
    return FakeKeySetEndpoint()


@pytest.fixture
def tokens(endpoint: FakeKeySetEndpoint) -> CognitoTokens:
    return CognitoTokens(ISSUER, CLIENT_ID, PoolKeys(ISSUER + "/.well-known/jwks.json", fetch=endpoint))


def refusal(tokens: CognitoTokens, token: str, now: datetime = NOW) -> str:
    with pytest.raises(TokenRejected) as refused:
        tokens.verify(token, now)
    return refused.value.reason


# -- accepted ---------------------------------------------------------------------------------
def test_a_valid_access_token_is_an_operator(tokens, endpoint):
    # Given an access token the pool signed for this app client
    token = sign(claims("access"))
    # When it is verified
    operator = tokens.verify(token, NOW)
    # Then it names the operator, after one fetch of the pool's keys from the issuer's jwks.json
    assert operator == OperatorClaims(subject="0f6c2c8e-operator", username="ops-ann", token_use="access")
    assert endpoint.fetches == [ISSUER + "/.well-known/jwks.json"]


def test_a_valid_id_token_is_an_operator(tokens):
    operator = tokens.verify(sign(claims("id")), NOW)
    assert operator == OperatorClaims(subject="0f6c2c8e-operator", username="ops-ann", token_use="id")


def test_the_keys_are_fetched_once_for_many_tokens(tokens, endpoint):
    for minute in range(30):
        moment = NOW + timedelta(minutes=minute)
        tokens.verify(sign(claims("access", now=moment)), moment)
    assert len(endpoint.fetches) == 1


def test_thirty_seconds_of_clock_disagreement_are_allowed(tokens):
    # An expiry 29 s ago and an issue time 29 s ahead are a clock skew, not a bad token
    assert tokens.verify(sign(claims(exp=int(NOW.timestamp()) - 29)), NOW).subject == "0f6c2c8e-operator"
    assert tokens.verify(sign(claims(iat=int(NOW.timestamp()) + 29)), NOW).subject == "0f6c2c8e-operator"


# -- refused ----------------------------------------------------------------------------------
@pytest.mark.parametrize("token_claims, reason", [
    (claims("access", client_id="another-app-client"), "not issued for this app client"),
    (claims("id", aud="another-app-client"), "not issued for this app client"),
    # An ID token's audience in an access token's place, and the other way round
    (claims("access", client_id=None, aud=CLIENT_ID), "not issued for this app client"),
    (claims("id", aud=None, client_id=CLIENT_ID), "not issued for this app client"),
    (claims("refresh"), "not issued for this app client"),
    (claims("access", iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Someone"),
     "not issued by this user pool"),
    (claims("access", iss=ISSUER + "/"), "not issued by this user pool"),
    (claims("access", exp=int(NOW.timestamp()) - 31), "expired: sign in again"),
    (claims("id", exp=int(NOW.timestamp()) - 3600), "expired: sign in again"),
    (claims("access", iat=int(NOW.timestamp()) + 31), "not valid yet"),
    (claims("access", nbf=int(NOW.timestamp()) + 600), "not valid yet"),
    (claims("access", exp=None), "not a valid token"),
    (claims("access", token_use=None), "not a valid token"),
    (claims("access", exp="tomorrow"), "not a valid token"),
])
def test_a_token_that_is_not_for_this_pool_and_client_is_refused_with_its_reason(tokens, token_claims, reason):
    assert refusal(tokens, sign(token_claims)) == reason


def test_an_hs256_token_signed_with_the_pools_public_key_is_refused_without_fetching_keys(tokens, endpoint):
    # Given the classic algorithm confusion: HMAC keyed with the public key, which anyone can get
    token = forged({"alg": "HS256", "typ": "JWT", "kid": KID}, claims(), public_pem())
    # Then it is refused as not signed by the pool, and no key was even looked up
    assert refusal(tokens, token) == "not signed by this user pool"
    assert endpoint.fetches == []


def test_the_hs256_confusion_is_refused_even_with_the_public_key_in_its_jwk_form(tokens):
    jwk = public_jwk()
    token = forged({"alg": "HS256", "kid": KID}, claims(), json.dumps(jwk).encode())
    assert refusal(tokens, token) == "not signed by this user pool"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_an_unsigned_token_is_refused(tokens, endpoint, alg):
    token = forged({"alg": alg, "kid": KID}, claims(), None)
    assert refusal(tokens, token) == "not signed by this user pool"
    assert endpoint.fetches == []


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "ES256"])
def test_only_rs256_is_accepted(tokens, alg):
    header = {"alg": alg, "kid": KID}
    token = forged(header, claims(), b"whatever")
    assert refusal(tokens, token) == "not signed by this user pool"


def test_a_tampered_payload_fails_the_signature(tokens):
    token = sign(claims("access", client_id="another-app-client"))
    assert refusal(tokens, tampered(token, client_id=CLIENT_ID)) == "not signed by this user pool"
    good = sign(claims())
    assert refusal(tokens, tampered(good, sub="someone-else")) == "not signed by this user pool"


def test_a_token_signed_by_another_key_under_the_pools_kid_is_refused(tokens):
    assert refusal(tokens, sign(claims(), key_name="attacker")) == "not signed by this user pool"


def test_a_token_without_a_kid_is_refused(tokens):
    pem = private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    token = jwt.encode(claims(), pem, algorithm="RS256")
    assert refusal(tokens, token) == "not signed by this user pool"


@pytest.mark.parametrize("token", ["abc.def.ghi", "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln", "a.b.c"])
def test_garbage_shaped_like_a_token_is_not_a_valid_token(tokens, token):
    assert refusal(tokens, token) == "not a valid token"


def test_an_unknown_kid_refetches_the_keys_at_most_once_per_ten_seconds(tokens, endpoint):
    # Given keys fetched for a first token
    tokens.verify(sign(claims()), NOW)
    # When tokens arrive with kids the pool does not have: at once, and 10, 19 and 20 s on
    seconds = (0, 10, 19, 20)
    refused = [refusal(tokens, sign(claims(), kid=f"made-up-{s}", key_name="attacker"), NOW + timedelta(seconds=s))
               for s in seconds]
    # Then each is refused, and the keys were fetched again only 10 and 20 s on
    assert refused == ["not signed by this user pool"] * 4
    assert len(endpoint.fetches) == 3


def test_a_rotated_key_is_picked_up_on_its_first_token(tokens, endpoint):
    tokens.verify(sign(claims()), NOW)
    # Given the pool starts signing with a new key, listed next to the old one
    endpoint.document = {"keys": [public_jwk(KID), public_jwk("pool-key-2", key_name="rotated")]}
    moment = NOW + timedelta(minutes=5)
    # Then a token signed with it is accepted at once, and the old key still works
    assert tokens.verify(sign(claims(now=moment), kid="pool-key-2", key_name="rotated"), moment).token_use == "access"
    assert tokens.verify(sign(claims(now=moment)), moment).token_use == "access"
    assert len(endpoint.fetches) == 2


def test_keys_are_fetched_again_after_an_hour_and_a_key_the_pool_dropped_stops_working(tokens, endpoint):
    tokens.verify(sign(claims()), NOW)
    endpoint.document = {"keys": [public_jwk("pool-key-2", key_name="rotated")]}
    before_the_hour = NOW + timedelta(seconds=3599)
    assert tokens.verify(sign(claims(now=before_the_hour)), before_the_hour).subject == "0f6c2c8e-operator"
    an_hour_on = NOW + timedelta(seconds=3600)
    assert refusal(tokens, sign(claims(now=an_hour_on)), an_hour_on) == "not signed by this user pool"
    assert len(endpoint.fetches) == 2


def test_keys_out_of_reach_at_the_first_token_is_unavailable_not_a_refusal(tokens, endpoint):
    # Given the key set endpoint failing
    endpoint.failure = "HTTP 503"
    # When a good token arrives, and another 4.5 s later
    with pytest.raises(KeysUnavailable) as first:
        tokens.verify(sign(claims()), NOW)
    with pytest.raises(KeysUnavailable) as second:
        tokens.verify(sign(claims()), NOW + timedelta(seconds=4.5))
    # Then neither is refused: they can be retried, the second once the 5.5 s left before the
    # next fetch are up (whole seconds, rounded up), and the second made no fetch
    assert (first.value.retry_after_s, second.value.retry_after_s) == (10, 6)
    assert len(endpoint.fetches) == 1
    # And once the endpoint answers again, 10 s on, the token is accepted
    endpoint.failure = None
    moment = NOW + timedelta(seconds=10)
    assert tokens.verify(sign(claims(now=moment)), moment).token_use == "access"
    assert len(endpoint.fetches) == 2


def test_keys_held_are_kept_when_a_refresh_fails(tokens, endpoint):
    tokens.verify(sign(claims()), NOW)
    endpoint.failure = "ConnectTimeout"
    an_hour_on = NOW + timedelta(hours=1, seconds=5)
    # The hourly refresh fails: the key held still vouches for its tokens
    assert tokens.verify(sign(claims(now=an_hour_on)), an_hour_on).subject == "0f6c2c8e-operator"
    # but a token under an unknown kid cannot be judged while the keys cannot be fetched
    with pytest.raises(KeysUnavailable) as unknown:
        tokens.verify(sign(claims(now=an_hour_on), kid="pool-key-2", key_name="rotated"), an_hour_on)
    assert unknown.value.retry_after_s == 10
    assert len(endpoint.fetches) == 2


def test_a_key_set_without_usable_rs256_keys_counts_as_a_failed_fetch(endpoint):
    # Only an HMAC key and an RS512 key: neither may vouch for an operator's token
    endpoint.document = {"keys": [{"kty": "oct", "kid": KID, "k": b64url(public_pem())},
                                  {**public_jwk(), "alg": "RS512"}]}
    tokens = CognitoTokens(ISSUER, CLIENT_ID, PoolKeys(ISSUER + "/.well-known/jwks.json", fetch=endpoint))
    with pytest.raises(KeysUnavailable):
        tokens.verify(sign(claims()), NOW)
    token = forged({"alg": "HS256", "kid": KID}, claims(), public_pem())
    assert refusal(tokens, token) == "not signed by this user pool"


def test_encryption_keys_in_the_set_are_ignored(endpoint):
    endpoint.document = {"keys": [{**public_jwk(), "use": "enc"}, public_jwk("pool-key-2", key_name="rotated")]}
    tokens = CognitoTokens(ISSUER, CLIENT_ID, PoolKeys(ISSUER + "/.well-known/jwks.json", fetch=endpoint))
    assert refusal(tokens, sign(claims())) == "not signed by this user pool"
    assert tokens.verify(sign(claims(), kid="pool-key-2", key_name="rotated"), NOW).token_use == "access"


# -- the key set over HTTP --------------------------------------------------------------------
JWKS_URL = ISSUER + "/.well-known/jwks.json"


@pytest.fixture
def http_client():
    cognito.reset()
    yield
    cognito.reset()


def test_the_key_set_is_read_from_the_issuers_jwks_json(http_client):
    with respx.mock(assert_all_called=True) as mock:
        mock.get(JWKS_URL).respond(200, json=key_set())
        assert fetch_key_set(JWKS_URL) == key_set()


@pytest.mark.parametrize("answer, reason", [
    (httpx.Response(500, text="oops"), "HTTP 500"),
    (httpx.Response(200, text="<html>"), "not JSON"),
    (httpx.Response(200, json={"no": "keys"}), "no keys list"),
    (httpx.ConnectTimeout("timed out"), "ConnectTimeout"),
    (httpx.ConnectError("refused"), "ConnectError"),
])
def test_a_key_set_endpoint_that_fails_says_how(http_client, answer, reason):
    with respx.mock() as mock:
        route = mock.get(JWKS_URL)
        if isinstance(answer, Exception):
            route.side_effect = answer
        else:
            route.return_value = answer
        with pytest.raises(KeySetFetchFailed) as failed:
            fetch_key_set(JWKS_URL)
    assert str(failed.value) == reason


def test_one_verifier_per_pool_and_client_in_an_environment(http_client):
    first = cognito.operator_tokens(ISSUER, CLIENT_ID)
    assert cognito.operator_tokens(ISSUER, CLIENT_ID) is first
    assert cognito.operator_tokens(ISSUER, "other-client") is not first
    assert first.keys.jwks_url == JWKS_URL


@pytest.mark.parametrize("token, expected", [
    ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", True),
    ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", True),
    ("sl_op_Jx3k-9QpZ_vT0", False),
    ("a.b", False),
    ("a.b.c.d", False),
    ("has space.b.c", False),
    ("", False),
])
def test_what_looks_like_a_jwt(token, expected):
    assert looks_like_jwt(token) is expected


# -- settings ---------------------------------------------------------------------------------
@pytest.fixture
def api_env(monkeypatch):
    monkeypatch.setenv("PUBLIC_API_URL", "https://api.sendline.test")
    for name in ("COGNITO_ISSUER", "COGNITO_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    config.reset()
    yield monkeypatch
    config.reset()


def test_cognito_settings_come_together(api_env):
    api_env.setenv("COGNITO_ISSUER", ISSUER)
    with pytest.raises(config.MissingSetting) as missing_client:
        config.api_settings()
    assert str(missing_client.value) == ("missing settings: COGNITO_CLIENT_ID "
                                         "(COGNITO_ISSUER and COGNITO_CLIENT_ID go together)")
    api_env.delenv("COGNITO_ISSUER")
    api_env.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    config.reset()
    with pytest.raises(config.MissingSetting) as missing_issuer:
        config.api_settings()
    assert str(missing_issuer.value) == ("missing settings: COGNITO_ISSUER "
                                         "(COGNITO_ISSUER and COGNITO_CLIENT_ID go together)")


def test_cognito_settings_are_read_when_both_are_set_and_optional_locally(api_env):
    assert (config.api_settings().cognito_issuer, config.api_settings().cognito_client_id) == (None, None)
    api_env.setenv("COGNITO_ISSUER", ISSUER)
    api_env.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    config.reset()
    assert (config.api_settings().cognito_issuer, config.api_settings().cognito_client_id) == (ISSUER, CLIENT_ID)


@pytest.mark.parametrize("issuer", ["http://cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
                                    ISSUER + "/", "https://cognito-idp.us-east-1.amazonaws.com"])
def test_an_issuer_that_is_not_an_https_pool_url_fails_the_cold_start(api_env, issuer):
    api_env.setenv("COGNITO_ISSUER", issuer)
    api_env.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    with pytest.raises(config.MissingSetting) as invalid:
        config.api_settings()
    assert "cognito_issuer" in str(invalid.value)
