"""Lead submission as integrators call it: errors name the field, retries never text twice."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from devstack import apigw
from tests.integration.conftest import API_KEY, INTEGRATOR
from tests.integration.test_lead_flow import make_flow


def submit(fns, body, headers=INTEGRATOR, target="/v1/leads", raw=None):
    if raw is not None:
        return fns.http("POST", target, body=raw, headers={"content-type": "application/json", **headers})
    return fns.http("POST", target, json_body=body, headers=headers)


@pytest.mark.parametrize("body, status, field, reason", [
    ({"phone": "2125550142"}, 422, "flow_id", "is required"),
    ({"flow_id": "FLOW", "first_name": "A"}, 422, "phone", "is required"),
    ({"flow_id": "FLOW", "phone": "call me"}, 422, "phone", "contains letters"),
    ({"flow_id": "FLOW", "phone": "2.12555E+09"}, 422, "phone", "digits lost to Excel scientific notation"),
    ({"flow_id": "FLOW", "phone": "12345"}, 422, "phone", "not a valid phone number"),
    ({"flow_id": "FLOW", "phone": "2125550142", "first_name": 7}, 422, "first_name", "must be a string"),
    ({"flow_id": "FLOW", "phone": True}, 422, "phone", "must be a string"),
    ({"flow_id": "FLOW", "phone": "2125550142", "vehicle": {"make": "Honda"}}, 422, "vehicle",
     "custom fields must be text, numbers or true/false"),
    ({"flow_id": "FLOW", "phone": "2125550142", "k" * 65: "v"}, 422, "k" * 64 + "…",
     "field names are at most 64 characters"),
    ({"flow_id": "fl_missing", "phone": "2125550142"}, 404, "flow_id", "no flow with this id"),
    (["not", "an", "object"], 422, "body", "must be a JSON object"),
])
def test_bad_input_gets_a_4xx_naming_the_field(fns, body, status, field, reason):
    flow_id = make_flow(fns)
    if isinstance(body, dict) and body.get("flow_id") == "FLOW":
        body = {**body, "flow_id": flow_id}
    result = submit(fns, body)
    assert result.status == status
    assert result.body["success"] is False
    assert result.body["errors"][0] == {"field": field, "reason": reason}
    assert result.body["error"] == f"{field}: {reason}"


def test_malformed_and_oversized_json(fns):
    malformed = submit(fns, None, raw='{"flow_id": "x", "phone": ')
    assert malformed.status == 400
    assert malformed.body["errors"][0]["field"] == "body"
    assert malformed.body["errors"][0]["reason"].startswith("is not valid JSON")
    huge = submit(fns, None, raw='{"notes": "' + "x" * 70_000 + '"}')
    assert (huge.status, huge.body["errors"][0]) == (413, {"field": "body", "reason": "larger than 64 KB"})
    empty = submit(fns, None, raw="")
    assert (empty.status, empty.body["errors"][0]["field"]) == (400, "body")


def test_a_body_that_is_not_utf8_or_nests_too_deeply_is_a_400_on_every_json_route(fns):
    from tests.integration.conftest import INTEGRATOR, OPERATOR

    for target, headers in (("/v1/brands", OPERATOR), ("/v1/leads", INTEGRATOR),
                            ("/api.php?action=ext_dnc_add", INTEGRATOR), ("/v1/messages/preview", OPERATOR)):
        garbled = fns.http("POST", target, body=b'\xff\xfe{"name": "x"}',
                           headers={**headers, "content-type": "application/json"})
        assert (garbled.status, garbled.body["errors"]) == (400, [{"field": "body", "reason": "is not valid UTF-8"}])
    nested = fns.http("POST", "/v1/brands", body="[" * 30_000 + "]" * 30_000,
                      headers={**OPERATOR, "content-type": "application/json"})
    assert (nested.status, nested.body["errors"]) == (400, [{"field": "body",
                                                             "reason": "nests arrays or objects too deeply"}])


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/nothing"), ("DELETE", "/v1/brands")])
def test_a_route_no_function_serves_answers_the_documented_error_shape(fns, method, path):
    # What a function is handed for a path none of its routes serve (a catch-all route's event).
    request = apigw.HttpRequest(method=method, target=path, headers=[("host", "api.sendline.test")], body=b"")
    event = apigw.build_event(request, apigw.RouteMatch("ANY /v1/{proxy+}", None, {"proxy": path[4:]}))
    result = fns.handler("campaign_api")(event, fns.context("campaign_api"))
    assert (result["statusCode"], json.loads(result["body"])) == (404, {
        "success": False, "error": "route: no such endpoint", "code": "not_found",
        "errors": [{"field": "route", "reason": "no such endpoint"}]})


def test_api_key_is_required_and_checked(fns):
    missing = submit(fns, {"flow_id": "x", "phone": "2125550142"}, headers={})
    assert (missing.status, missing.body["errors"][0]["field"]) == (401, "api_key")
    wrong = submit(fns, {"flow_id": "x", "phone": "2125550142"}, headers={"x-api-key": "nope"})
    assert (wrong.status, wrong.body["errors"][0]["reason"]) == (401, "not a valid API key")


def test_legacy_route_takes_the_key_as_a_query_parameter(fns, daytime):
    flow_id = make_flow(fns)
    result = fns.http("POST", f"/api.php?action=ext_lead_submit&api_key={API_KEY}",
                      json_body={"flow_id": flow_id, "phone": "+1 212 555 0142", "first_name": "Ann"})
    assert result.status == 200
    assert result.body["success"] is True and result.body["sent"] is True and result.body["drips_queued"] == 2
    unknown = fns.http("GET", f"/api.php?action=ext_nope&api_key={API_KEY}")
    assert unknown.status == 400
    assert unknown.body["errors"][0]["field"] == "action"


def test_same_flow_and_phone_within_a_day_is_one_lead(fns, daytime):
    flow_id = make_flow(fns)
    first = submit(fns, {"flow_id": flow_id, "phone": "(212) 555-0142", "first_name": "Ann"})
    again = submit(fns, {"flow_id": flow_id, "phone": "212.555.0142", "first_name": "Ann"})
    other_flow = submit(fns, {"flow_id": make_flow(fns), "phone": "212.555.0142"})
    assert again.status == 200
    assert again.body["lead_id"] == first.body["lead_id"]
    assert (again.body["duplicate"], again.body["sent"], again.body["drips_queued"]) == (True, True, 2)
    assert other_flow.body["lead_id"] != first.body["lead_id"]


def test_idempotency_key_returns_the_original_lead(fns):
    flow_id = make_flow(fns)
    headers = {**INTEGRATOR, "idempotency-key": "order-77"}
    first = submit(fns, {"flow_id": flow_id, "phone": "2125550142"}, headers=headers)
    again = submit(fns, {"flow_id": flow_id, "phone": "2125550142"}, headers=headers)
    assert again.body["lead_id"] == first.body["lead_id"]
    assert again.body["duplicate"] is True


def test_idempotency_key_reused_for_another_lead_is_a_409_not_a_silent_drop(fns):
    flow_id = make_flow(fns)
    headers = {**INTEGRATOR, "idempotency-key": "order-78"}
    submit(fns, {"flow_id": flow_id, "phone": "2125550142"}, headers=headers)
    other = submit(fns, {"flow_id": flow_id, "phone": "2125550143"}, headers=headers)
    assert other.status == 409
    assert other.body["errors"][0] == {"field": "Idempotency-Key", "reason": "was already used for a different request"}


def test_the_301st_request_in_a_minute_gets_429(fns):
    if datetime.now(UTC).second > 45:  # keep all 301 requests inside one rate window
        time.sleep(61 - datetime.now(UTC).second)
    statuses = [fns.http("GET", "/v1/stats", headers=INTEGRATOR).status for _ in range(300)]
    assert statuses == [200] * 300
    limited = fns.http("GET", "/v1/stats", headers=INTEGRATOR)
    assert limited.status == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.body["errors"][0] == {"field": "api_key", "reason": "more than 300 requests a minute"}


def test_operator_issues_integrator_keys_shown_once(fns):
    from tests.integration.conftest import OPERATOR

    issued = fns.http("POST", "/v1/api-keys", headers=OPERATOR, json_body={"name": "Zapier"})
    assert issued.status == 201
    raw = issued.body["api_key"]
    assert raw.startswith("sk_live_") and len(raw) == 51
    assert fns.http("GET", "/v1/stats", headers={"x-api-key": raw}).status == 200
    listed = fns.http("GET", "/v1/api-keys", headers=OPERATOR).body["api_keys"]
    zapier = next(k for k in listed if k["name"] == "Zapier")
    assert zapier["key_id"] == issued.body["key_id"]
    assert zapier["hint"] == f"{raw[:7]}…{raw[-4:]}"
    assert raw not in str(listed)
    nameless = fns.http("POST", "/v1/api-keys", headers=OPERATOR, json_body={"name": ""})
    assert (nameless.status, nameless.body["errors"][0]["field"]) == (422, "name")
    assert fns.http("POST", "/v1/api-keys", json_body={"name": "x"}).status == 401


def test_form_posts_and_json_labelled_as_a_form_are_both_understood(fns, daytime):
    flow_id = make_flow(fns)
    form_post = fns.http("POST", "/v1/leads", body=f"flow_id={flow_id}&phone=2125550142&first_name=Ann",
                         headers={**INTEGRATOR, "content-type": "application/x-www-form-urlencoded"})
    json_as_form = fns.http("POST", "/v1/leads", body=f'{{"flow_id": "{flow_id}", "phone": "2125550199"}}',
                            headers={**INTEGRATOR, "content-type": "application/x-www-form-urlencoded"})
    assert (form_post.status, form_post.body["sent"]) == (200, True)
    assert (json_as_form.status, json_as_form.body["sent"]) == (200, True)


def test_absurd_ids_in_paths_are_404_not_500(fns):
    from tests.integration.conftest import OPERATOR

    long_id = "x" * 3000
    for target in (f"/v1/leads/{long_id}", f"/v1/flows/{long_id}", f"/v1/flows/{long_id}/activity"):
        result = fns.http("GET", target, headers=OPERATOR)
        assert result.status == 404, target
    assert fns.http("POST", f"/v1/flows/{long_id}/pause", headers=OPERATOR).status == 404


def test_dnc_path_accepts_a_percent_encoded_plus(fns):
    from tests.integration.conftest import OPERATOR

    fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phones": ["+12125550142"]})
    checked = fns.http("GET", "/v1/dnc/%2B12125550142", headers=OPERATOR)
    assert (checked.status, checked.body["dnc"], checked.body["phone"], checked.body["source"]) == (
        200, True, "+12125550142", "operator")


def test_a_path_no_route_serves_answers_the_documented_404(fns):
    from tests.integration.conftest import OPERATOR

    for method, target in (("GET", "/v1/nothing"), ("POST", "/v1/leadz"), ("DELETE", "/v1/flows/x/y/z")):
        result = fns.http(method, target, headers=OPERATOR)
        assert (result.status, result.body) == (404, {
            "success": False, "error": "route: no such endpoint", "code": "not_found",
            "errors": [{"field": "route", "reason": "no such endpoint"}]}), target
