"""The routes operators share with integrators, deployed without a gateway authorizer: an
operator's Cognito token is verified by the function, an integrator's API key still works, and
integrator-only routes take no token in a key's place."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from sendline import config, http
from sendline.adapters import cognito
from tests.integration.conftest import DAYTIME, INTEGRATOR, OPERATOR
from tests.unit.test_operator_tokens import CLIENT_ID, claims, forged, key_set, public_pem, sign, tampered

_pools = itertools.count(1)


def unauthorized(reason: str) -> dict[str, Any]:
    return {"success": False, "error": f"authorization: {reason}", "code": "unauthorized",
            "errors": [{"field": "authorization", "reason": reason}]}


@pytest.fixture
def pool(fns, monkeypatch) -> dict[str, Any]:
    """A Cognito user pool configured as the stack does it (COGNITO_ISSUER, COGNITO_CLIENT_ID),
    its jwks.json served by respx, the request clock at DAYTIME. Each test gets a pool of its
    own, so no test sees the keys another one fetched."""
    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool{next(_pools)}"
    monkeypatch.setenv("COGNITO_ISSUER", issuer)
    monkeypatch.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    config.reset()
    cognito.reset()
    monkeypatch.setattr(http, "utcnow", lambda: DAYTIME)
    with respx.mock(assert_all_called=False) as mock:
        jwks = mock.get(issuer + "/.well-known/jwks.json")
        jwks.return_value = httpx.Response(200, json=key_set())
        yield {"issuer": issuer, "jwks": jwks}
    cognito.reset()


def token(pool: dict[str, Any], kind: str = "access", **overrides: Any) -> str:
    return sign(claims(kind, now=DAYTIME, iss=pool["issuer"], **overrides))


def bearer(jwt_text: str) -> dict[str, str]:
    return {"authorization": f"Bearer {jwt_text}"}


@pytest.mark.parametrize("kind", ["access", "id"])
def test_an_operators_cognito_token_opens_the_shared_routes(fns, pool, kind):
    # Given an operator signed in to the pool
    headers = bearer(token(pool, kind))
    # When the dashboard reads campaigns, stats and a preview, routes integrators share
    campaigns = fns.http("GET", "/v1/campaigns", headers=headers)
    stats = fns.http("GET", "/v1/stats", headers=headers)
    preview = fns.http("POST", "/v1/messages/preview", headers=headers, json_body={"body": "Hi"})
    dnc = fns.http("POST", "/v1/dnc", headers=headers, json_body={"phones": ["2125550142"]})
    # Then each is served as an operator's: no integrator rate-limit headers
    assert (campaigns.status, campaigns.body) == (200, {"campaigns": []})
    assert [r.status for r in (stats, preview, dnc)] == [200, 200, 200]
    assert not any("x-ratelimit-limit" in r.headers for r in (campaigns, stats, preview, dnc))
    # and the pool's keys were fetched once for all of them
    assert pool["jwks"].call_count == 1


def test_an_operator_only_route_checks_the_token_too_when_no_authorizer_did(fns, pool):
    listed = fns.http("GET", "/v1/api-keys", headers=bearer(token(pool)))
    assert listed.status == 200
    expired = fns.http("GET", "/v1/api-keys", headers=bearer(token(pool, exp=int(DAYTIME.timestamp()) - 60)))
    assert (expired.status, expired.body) == (401, unauthorized("expired: sign in again"))


@pytest.mark.parametrize("make, reason", [
    (lambda p: token(p, client_id="another-app-client"), "not issued for this app client"),
    (lambda p: token(p, "id", aud="another-app-client"), "not issued for this app client"),
    (lambda p: sign(claims(now=DAYTIME, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")),
     "not issued by this user pool"),
    (lambda p: token(p, exp=int(DAYTIME.timestamp()) - 31), "expired: sign in again"),
    (lambda p: forged({"alg": "HS256", "typ": "JWT", "kid": "pool-key-1"},
                      claims(now=DAYTIME, iss=p["issuer"]), public_pem()), "not signed by this user pool"),
    (lambda p: forged({"alg": "none", "kid": "pool-key-1"}, claims(now=DAYTIME, iss=p["issuer"]), None),
     "not signed by this user pool"),
    (lambda p: sign(claims(now=DAYTIME, iss=p["issuer"]), kid="unknown-kid", key_name="attacker"),
     "not signed by this user pool"),
    (lambda p: tampered(token(p, client_id="another-app-client"), client_id=CLIENT_ID),
     "not signed by this user pool"),
])
def test_a_bad_token_is_a_401_naming_authorization(fns, pool, make, reason):
    answer = fns.http("GET", "/v1/campaigns", headers=bearer(make(pool)))
    assert (answer.status, answer.body) == (401, unauthorized(reason))


def test_the_static_operator_token_still_works_beside_cognito(fns, pool):
    answer = fns.http("GET", "/v1/campaigns", headers=OPERATOR)
    assert (answer.status, answer.body) == (200, {"campaigns": []})
    assert pool["jwks"].call_count == 0
    wrong = fns.http("GET", "/v1/campaigns", headers=bearer("not-the-operator-token"))
    assert (wrong.status, wrong.body) == (
        401, unauthorized("send the operator token as 'Authorization: Bearer <token>'"))


def test_an_api_key_still_works_on_the_shared_routes(fns, pool):
    answer = fns.http("GET", "/v1/campaigns", headers=INTEGRATOR)
    assert (answer.status, answer.body, answer.headers["x-ratelimit-limit"]) == (200, {"campaigns": []}, "300")
    assert pool["jwks"].call_count == 0


def test_a_refused_token_next_to_a_valid_api_key_is_served_as_the_integrator(fns, pool):
    expired = token(pool, exp=int(DAYTIME.timestamp()) - 60)
    answer = fns.http("GET", "/v1/campaigns", headers={**bearer(expired), **INTEGRATOR})
    assert (answer.status, answer.headers["x-ratelimit-remaining"]) == (200, "299")


def test_no_credentials_on_a_shared_route_asks_for_the_api_key(fns, pool):
    answer = fns.http("GET", "/v1/campaigns")
    assert (answer.status, answer.body["errors"]) == (401, [
        {"field": "api_key", "reason": "missing: send it in the X-API-Key header or ?api_key="}])


def test_an_integrator_route_takes_no_token_in_place_of_an_api_key(fns, pool):
    good = token(pool)
    lead = {"flow_id": "fl_x", "phone": "2125550142"}
    # A valid operator token as the bearer: the integrator route still wants its key
    as_bearer = fns.http("POST", "/v1/leads", headers=bearer(good), json_body=lead)
    assert (as_bearer.status, as_bearer.body["errors"]) == (401, [
        {"field": "api_key", "reason": "missing: send it in the X-API-Key header or ?api_key="}])
    # ...and the same token as the key is not a key
    as_key = fns.http("POST", "/v1/leads", headers={"x-api-key": good}, json_body=lead)
    legacy = fns.http("GET", "/api.php?action=ext_stats", headers={"x-api-key": good})
    for answer in (as_key, legacy):
        assert (answer.status, answer.body["errors"]) == (401, [{"field": "api_key", "reason": "not a valid API key"}])
    assert pool["jwks"].call_count == 0


def test_keys_out_of_reach_are_a_503_with_retry_after_not_a_sign_out(fns, pool, monkeypatch):
    # Given the pool's jwks.json failing
    pool["jwks"].return_value = httpx.Response(500)
    # When an operator's good token arrives
    answer = fns.http("GET", "/v1/campaigns", headers=bearer(token(pool)))
    # Then the answer says to retry, naming authorization, and tells nothing of why
    assert (answer.status, answer.headers["retry-after"], answer.body) == (503, "10", {
        "success": False, "error": "authorization: could not be checked just now; try again shortly",
        "code": "auth_unavailable",
        "errors": [{"field": "authorization", "reason": "could not be checked just now; try again shortly"}]})
    # And a timeout, once the 10 s before the next fetch are up, is the same
    pool["jwks"].side_effect = httpx.ReadTimeout("slow")
    monkeypatch.setattr(http, "utcnow", lambda: DAYTIME + timedelta(seconds=10))
    later = fns.http("GET", "/v1/campaigns", headers=bearer(token(pool)))
    assert (later.status, later.headers["retry-after"], later.body["code"]) == (503, "10", "auth_unavailable")
    assert pool["jwks"].call_count == 2


def test_an_integrator_sending_a_token_too_is_served_by_its_key_while_the_keys_are_out_of_reach(fns, pool):
    pool["jwks"].return_value = httpx.Response(503)
    answer = fns.http("GET", "/v1/campaigns", headers={**bearer(token(pool)), **INTEGRATOR})
    assert (answer.status, answer.body, answer.headers["x-ratelimit-remaining"]) == (200, {"campaigns": []}, "299")


def test_without_cognito_settings_a_jwt_is_just_a_wrong_operator_token(fns, pool, monkeypatch):
    monkeypatch.delenv("COGNITO_ISSUER")
    monkeypatch.delenv("COGNITO_CLIENT_ID")
    config.reset()
    answer = fns.http("GET", "/v1/campaigns", headers=bearer(token(pool)))
    assert (answer.status, answer.body) == (401, unauthorized(
        "send the operator token as 'Authorization: Bearer <token>'"))
    assert pool["jwks"].call_count == 0
