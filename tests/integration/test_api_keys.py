"""Integrator API keys: lookups remembered per execution environment, and revocation."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from infra import spec
from sendline import http, runtime
from sendline.adapters.records import Records
from sendline.adapters.store import Store
from sendline.services.api_keys import (
    FOUND_TTL_S,
    MAX_REMEMBERED,
    UNKNOWN_TTL_S,
    KeyLookups,
    key_id_for,
    register_api_key,
    revoke_api_key,
)
from tests.integration.conftest import API_KEY, DAYTIME, INTEGRATOR, OPERATOR

KEY_ID = key_id_for(API_KEY)
REVOKED = {"success": False, "error": "api_key: revoked: ask the operator for a new key", "code": "unauthorized",
           "errors": [{"field": "api_key", "reason": "revoked: ask the operator for a new key"}]}
NOT_VALID = {"success": False, "error": "api_key: not a valid API key", "code": "unauthorized",
             "errors": [{"field": "api_key", "reason": "not a valid API key"}]}


@pytest.fixture
def clock(fns, monkeypatch) -> dict[str, Any]:
    """The request clock (http.utcnow, the operator API's) at DAYTIME, moved by `advance(s)`."""
    now = {"value": DAYTIME}
    monkeypatch.setattr(http, "utcnow", lambda: now["value"])
    monkeypatch.setattr(fns.module("operator_api"), "utcnow", lambda: now["value"])

    def advance(seconds: float) -> None:
        now["value"] = DAYTIME + timedelta(seconds=seconds)

    now["advance"] = advance
    return now


@pytest.fixture
def key_reads(fns) -> Counter:
    """GetItem calls on integrator keys' records made by the handlers, by key item."""
    reads: Counter = Counter()

    def count(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("Key", {}).get("pk", {}).get("S", "")
        if pk.startswith("APIKEY#"):
            reads[pk] += 1

    runtime.records().store._db.meta.events.register("before-parameter-build.dynamodb.GetItem", count,
                                                     unique_id="test-api-key-reads")
    return reads


def another_environment() -> Records:
    """The same table as another warm execution environment sees it: its own records, so its
    own remembered lookups."""
    return Records(Store(boto3.client("dynamodb"), spec.TABLE.name))


def stats(fns, headers=INTEGRATOR):
    return fns.http("GET", "/v1/stats", headers=headers)


# -- remembered lookups -----------------------------------------------------------------------
def test_ten_requests_with_one_key_read_the_key_once(fns, clock, key_reads):
    # When an integrator makes ten requests within a minute
    answers = []
    for second in range(10):
        clock["advance"](second * 5)
        answers.append(stats(fns).status)
    # Then all are served, and the key's record was read once, by its hash
    assert answers == [200] * 10
    assert key_reads == {f"APIKEY#{hashlib.sha256(API_KEY.encode()).hexdigest()}": 1}


def test_a_found_key_is_read_again_after_sixty_seconds(fns, clock, key_reads):
    stats(fns)
    clock["advance"](59)
    stats(fns)
    assert sum(key_reads.values()) == 1
    clock["advance"](60)
    stats(fns)
    assert sum(key_reads.values()) == 2


def test_an_unknown_key_is_remembered_for_ten_seconds_so_a_new_key_works_soon(fns, clock, key_reads):
    new_key = "sk_live_issued_a_moment_later"
    # Given an integrator trying a key before it exists, five times
    tries = [stats(fns, {"x-api-key": new_key}) for _ in range(5)]
    assert [(t.status, t.body) for t in tries] == [(401, NOT_VALID)] * 5
    assert sum(key_reads.values()) == 1
    # When the key is issued in another execution environment
    register_api_key(new_key, "late key", another_environment())
    # Then it is refused here until the unknown key's 10 s are up, then accepted
    clock["advance"](9)
    assert (stats(fns, {"x-api-key": new_key}).status, sum(key_reads.values())) == (401, 1)
    clock["advance"](10)
    assert (stats(fns, {"x-api-key": new_key}).status, sum(key_reads.values())) == (200, 2)


def test_the_ttls_are_a_minute_for_keys_and_ten_seconds_for_unknown_ones():
    assert (FOUND_TTL_S, UNKNOWN_TTL_S, MAX_REMEMBERED) == (60, 10, 1000)


class FakeKeyRecords:
    """Key records by hash, counting reads."""

    def __init__(self, known: set[str]):
        self.known = known
        self.reads: list[str] = []

    def get_api_key(self, key_hash: str) -> dict[str, Any] | None:
        self.reads.append(key_hash)
        return {"key_id": "key_" + key_hash[:16], "name": "n"} if key_hash in self.known else None


def test_at_most_a_thousand_keys_are_remembered_least_recently_used_out_first():
    known = {f"{i:064x}" for i in range(1001)}
    records = FakeKeyRecords(known)
    lookups = KeyLookups(records)  # type: ignore[arg-type]
    first, *rest = sorted(known)
    # Given a thousand and one keys looked up, the first one used again before the last
    for key_hash in [first, *rest[:-1], first, rest[-1]]:
        lookups.find(key_hash, DAYTIME)
    assert (len(lookups), len(records.reads)) == (1000, 1001)
    # Then the least recently used (the second) was dropped; the first and the last are kept
    for key_hash in (first, rest[-1]):
        lookups.find(key_hash, DAYTIME)
    assert len(records.reads) == 1001
    lookups.find(rest[0], DAYTIME)
    assert records.reads[-1] == rest[0] and len(records.reads) == 1002


def test_a_flood_of_unknown_keys_does_not_push_real_keys_out():
    real = f"{7:064x}"
    records = FakeKeyRecords({real})
    lookups = KeyLookups(records)  # type: ignore[arg-type]
    lookups.find(real, DAYTIME)
    for i in range(5000):
        assert lookups.find(f"{i + 100:064x}", DAYTIME) is None
    assert len(lookups) == 1001
    assert lookups.find(real, DAYTIME) == {"key_id": "key_" + real[:16], "name": "n"}
    assert records.reads.count(real) == 1


# -- revocation -------------------------------------------------------------------------------
def test_operator_revokes_a_key_and_it_stops_working_at_once_where_it_was_revoked(fns, clock):
    # Given an integrator whose key works
    assert stats(fns).status == 200
    # When the operator revokes it
    clock["advance"](30)
    revoked = fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    # Then the answer is the key's record, kept, with when it was revoked
    assert (revoked.status, revoked.body) == (200, {
        "success": True, "key_id": KEY_ID, "name": "integration tests", "hint": "sk_test…_key",
        "created_at": revoked.body["created_at"], "status": "revoked", "revoked_at": "2026-12-03T18:00:30.000Z"})
    # and the key is refused right away in this execution environment
    refused = stats(fns)
    assert (refused.status, refused.body) == (401, REVOKED)


def test_a_key_revoked_elsewhere_stops_working_within_sixty_seconds(fns, clock):
    # Given the key used (so remembered) in this execution environment
    assert stats(fns).status == 200
    # When another environment (the operator API's) revokes it
    revoke_api_key(another_environment(), KEY_ID, DAYTIME)
    # Then it still works here while the remembered lookup is under 60 s old, and not after
    clock["advance"](59)
    assert stats(fns).status == 200
    clock["advance"](61)
    refused = stats(fns)
    assert (refused.status, refused.body) == (401, REVOKED)


def test_revoked_keys_are_refused_on_every_integrator_route(fns, clock):
    fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    for method, target in (("POST", "/v1/leads"), ("GET", "/v1/campaigns"), ("GET", "/api.php?action=ext_stats"),
                           ("GET", f"/api.php?action=ext_stats&api_key={API_KEY}")):
        headers = {} if "api_key=" in target else INTEGRATOR
        answer = fns.http(method, target, headers=headers, json_body={} if method == "POST" else None)
        assert (target, answer.status, answer.body) == (target, 401, REVOKED)


def test_the_listing_shows_each_keys_status(fns, clock):
    issued = fns.http("POST", "/v1/api-keys", headers=OPERATOR, json_body={"name": "Zapier"}).body
    clock["advance"](90)
    fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    listed = {k["key_id"]: k for k in fns.http("GET", "/v1/api-keys", headers=OPERATOR).body["api_keys"]}
    assert listed[KEY_ID] == {"key_id": KEY_ID, "name": "integration tests", "hint": "sk_test…_key",
                              "created_at": listed[KEY_ID]["created_at"], "status": "revoked",
                              "revoked_at": "2026-12-03T18:01:30.000Z"}
    assert (listed[issued["key_id"]]["status"], listed[issued["key_id"]]["revoked_at"]) == ("active", None)
    # the issued key still works, the revoked one does not
    assert stats(fns, {"x-api-key": issued["api_key"]}).status == 200
    assert stats(fns).status == 401


def test_revoking_a_revoked_key_again_answers_the_same(fns, clock):
    first = fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    clock["advance"](3600)
    again = fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    assert (again.status, again.body) == (200, first.body)
    assert again.body["revoked_at"] == "2026-12-03T18:00:00.000Z"


@pytest.mark.parametrize("key_id", ["key_0123456789abcdef", "key_nope", "sk_test_integrator_key", "%20"])
def test_revoking_an_unknown_key_is_a_404_naming_key_id(fns, clock, key_id):
    answer = fns.http("DELETE", f"/v1/api-keys/{key_id}", headers=OPERATOR)
    assert (answer.status, answer.body) == (404, {
        "success": False, "error": "key_id: no API key with this id", "code": "not_found",
        "errors": [{"field": "key_id", "reason": "no API key with this id"}]})
    assert stats(fns).status == 200


def test_only_an_operator_revokes_keys(fns, clock):
    by_integrator = fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=INTEGRATOR)
    assert (by_integrator.status, by_integrator.body["errors"]) == (401, [
        {"field": "authorization", "reason": "send the operator token as 'Authorization: Bearer <token>'"}])
    assert stats(fns).status == 200


def test_registering_a_revoked_key_again_leaves_it_revoked(fns, clock):
    # As the local stack does with its demo key at every start
    fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    assert register_api_key(API_KEY, "integration tests") == KEY_ID
    refused = stats(fns)
    assert (refused.status, refused.body) == (401, REVOKED)


def test_a_revoked_keys_rate_window_and_leads_still_name_it(fns, clock):
    from tests.integration.test_lead_flow import make_flow

    flow_id = make_flow(fns)
    lead = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": "2125550142"})
    fns.http("DELETE", f"/v1/api-keys/{KEY_ID}", headers=OPERATOR)
    window = int(DAYTIME.timestamp()) // 60 * 60
    rate = runtime.records().store.get(f"RATE#{KEY_ID}#{window}", "RATE")
    assert rate["requests"] == 1
    stored, _ = runtime.records().get_lead(lead.body["lead_id"])
    assert (stored["api_key_id"], stored["consent"]["api_key_name"]) == (KEY_ID, "integration tests")
    # and the lead's key is still in the operator's listing, to say whose it was
    listed = fns.http("GET", "/v1/api-keys", headers=OPERATOR).body["api_keys"]
    assert [(k["name"], k["status"]) for k in listed if k["key_id"] == stored["api_key_id"]] == [
        ("integration tests", "revoked")]
