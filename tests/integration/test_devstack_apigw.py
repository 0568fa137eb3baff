"""The API Gateway emulator builds the HTTP API (payload 2.0) event AWS sends and maps replies."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.apigw import (
    ApiGateway,
    HttpRequest,
    RouteBinding,
    RouteTable,
    bindings_from_spec,
    build_event,
    response_from_result,
)
from devstack.lambda_runtime import InvocationResult, LambdaFunction
from infra import spec


@dataclass
class FakeFunction:
    """Records every event and answers with `reply` (or fails when `fail` is set)."""

    reply: Any = field(default_factory=lambda: {"statusCode": 200, "body": "ok"})
    fail: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: Any) -> InvocationResult:
        self.events.append(event)
        if self.fail:
            return InvocationResult("req-1", 1.0, None, "ValueError", "boom")
        return InvocationResult("req-1", 1.0, self.reply)


@pytest.fixture
def functions() -> dict[str, FakeFunction]:
    return {"flows": FakeFunction(), "activity": FakeFunction(), "files": FakeFunction()}


@pytest.fixture
def gateway(functions: dict[str, FakeFunction], tmp_path: Path) -> Iterator[ApiGateway]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<h1>dashboard</h1>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    gw = ApiGateway(
        [
            RouteBinding("POST", "/v1/flows", functions["flows"]),
            RouteBinding("GET", "/v1/flows/{flow_id}/activity", functions["activity"]),
            RouteBinding("ANY", "/files/{proxy+}", functions["files"]),
        ],
        port=0,
        static_dir=dist,
        max_body_bytes=1000,
    )
    gw.start()
    yield gw
    gw.stop()


def raw_request(
    gw: ApiGateway, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> tuple[int, bytes]:
    """Sends exactly these headers (plus Host and, with a body, Content-Length)."""
    connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


VOLATILE_CONTEXT = ("requestId", "time", "timeEpoch")


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """The event without the values that change on every request."""
    copy = json.loads(json.dumps(event))
    for key in VOLATILE_CONTEXT:
        copy["requestContext"].pop(key)
    copy["headers"].pop("x-amzn-trace-id")
    return copy


def test_get_becomes_the_v2_event_with_path_params_repeated_query_and_headers(
    gateway: ApiGateway, functions: dict[str, FakeFunction]
) -> None:
    # Given a GET with an encoded path parameter, a repeated query parameter, a repeated header
    # and two cookies
    status, _ = raw_request(
        gateway,
        "GET",
        "/v1/flows/flow%2042/activity?status=sent&status=failed&empty=&q=a+b",
        [
            ("User-Agent", "integrator/1.0"),
            ("X-Api-Key", "key-1"),
            ("X-Tag", "one"),
            ("X-Tag", "two"),
            ("Cookie", "session=abc; theme=dark"),
        ],
    )

    # Then the function receives the event an HTTP API sends
    assert status == 200
    (event,) = functions["activity"].events
    host = f"127.0.0.1:{gateway.port}"
    assert stable(event) == {
        "version": "2.0",
        "routeKey": "GET /v1/flows/{flow_id}/activity",
        "rawPath": "/v1/flows/flow%2042/activity",
        "rawQueryString": "status=sent&status=failed&empty=&q=a+b",
        "cookies": ["session=abc", "theme=dark"],
        "headers": {
            "host": host,
            "user-agent": "integrator/1.0",
            "x-api-key": "key-1",
            "x-tag": "one,two",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": str(gateway.port),
            "x-forwarded-proto": "http",
        },
        "queryStringParameters": {"status": "sent,failed", "empty": "", "q": "a b"},
        "pathParameters": {"flow_id": "flow 42"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "sl0local01",
            "domainName": host,
            "domainPrefix": "127",
            "http": {
                "method": "GET",
                "path": "/v1/flows/flow%2042/activity",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "integrator/1.0",
            },
            "routeKey": "GET /v1/flows/{flow_id}/activity",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    context = event["requestContext"]
    assert len(context["requestId"]) == 16
    assert context["time"].endswith(" +0000") and "/" in context["time"]
    assert isinstance(context["timeEpoch"], int)


def test_json_body_arrives_as_text(gateway: ApiGateway, functions: dict[str, FakeFunction]) -> None:
    body = json.dumps({"name": "Spring", "emoji": "☀"}).encode()

    raw_request(
        gateway, "POST", "/v1/flows", [("Content-Type", "application/json; charset=utf-8")], body
    )

    (event,) = functions["flows"].events
    assert event["body"] == '{"name": "Spring", "emoji": "\\u2600"}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-length"] == str(len(body))
    assert "queryStringParameters" not in event and "pathParameters" not in event
    assert "cookies" not in event


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"MessageSid=SM1&MessageStatus=delivered"),
        ("application/octet-stream", bytes(range(256))),
        (None, b"no content type"),
    ],
)
def test_form_binary_and_untyped_bodies_arrive_base64_encoded(
    gateway: ApiGateway,
    functions: dict[str, FakeFunction],
    content_type: str | None,
    body: bytes,
) -> None:
    headers = [("Content-Type", content_type)] if content_type else []

    raw_request(gateway, "POST", "/v1/flows", headers, body)

    (event,) = functions["flows"].events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_existing_forwarded_for_is_extended(
    gateway: ApiGateway, functions: dict[str, FakeFunction]
) -> None:
    raw_request(gateway, "POST", "/v1/flows", [("X-Forwarded-For", "203.0.113.9")])

    assert functions["flows"].events[0]["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_structured_response_maps_status_headers_cookies_and_base64_body(
    gateway: ApiGateway, functions: dict[str, FakeFunction]
) -> None:
    functions["flows"].reply = {
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "X-Count": 3},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": base64.b64encode(b"\x89PNG\x00\x01").decode(),
        "isBase64Encoded": True,
    }

    response = httpx.post(f"{gateway.url}/v1/flows", json={})

    assert response.status_code == 201
    assert response.content == b"\x89PNG\x00\x01"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-count"] == "3"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert response.headers["apigw-requestid"] == functions["flows"].events[0]["requestContext"][
        "requestId"
    ]


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        ({"flow_id": "f1", "ok": True}, {"flow_id": "f1", "ok": True}),
        ("plain words", None),
        ([1, 2], [1, 2]),
    ],
)
def test_reply_without_status_code_is_a_200_json_response(
    gateway: ApiGateway, functions: dict[str, FakeFunction], reply: Any, body: Any
) -> None:
    functions["flows"].reply = reply

    response = httpx.post(f"{gateway.url}/v1/flows")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    if body is None:
        assert response.text == reply
    else:
        assert response.json() == body


def test_unknown_route_and_wrong_method_are_404(gateway: ApiGateway) -> None:
    assert httpx.get(f"{gateway.url}/v1/nothing.json").status_code == 404
    wrong_method = httpx.delete(f"{gateway.url}/v1/flows")
    assert wrong_method.status_code == 404
    assert wrong_method.json() == {"message": "Not Found"}


def test_failed_invocation_and_malformed_reply_are_500(
    gateway: ApiGateway, functions: dict[str, FakeFunction]
) -> None:
    functions["flows"].fail = True
    failed = httpx.post(f"{gateway.url}/v1/flows")
    functions["flows"].fail = False
    functions["flows"].reply = {"statusCode": 200, "body": {"not": "a string"}}
    malformed = httpx.post(f"{gateway.url}/v1/flows")

    for response in (failed, malformed):
        assert response.status_code == 500
        assert response.json() == {"message": "Internal Server Error"}


def test_body_over_the_limit_is_413_and_never_invokes(
    gateway: ApiGateway, functions: dict[str, FakeFunction]
) -> None:
    response = httpx.post(f"{gateway.url}/v1/flows", content=b"x" * 1001)

    assert response.status_code == 413
    assert functions["flows"].events == []
    assert httpx.post(f"{gateway.url}/v1/flows", content=b"x" * 1000).status_code == 200


def test_greedy_path_parameter(gateway: ApiGateway, functions: dict[str, FakeFunction]) -> None:
    httpx.put(f"{gateway.url}/files/reports/2024/q1.csv")

    (event,) = functions["files"].events
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "reports/2024/q1.csv"}


def test_dashboard_files_serve_get_requests_no_route_claims(gateway: ApiGateway) -> None:
    assert httpx.get(f"{gateway.url}/").text == "<h1>dashboard</h1>"
    assert httpx.get(f"{gateway.url}/flows/123").text == "<h1>dashboard</h1>"
    script = httpx.get(f"{gateway.url}/assets/app.js")
    assert script.text == "console.log(1)"
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(f"{gateway.url}/assets/missing.js").status_code == 404
    assert raw_request(gateway, "GET", "/../../etc/passwd", [])[0] == 404
    assert raw_request(gateway, "GET", "/%2e%2e/%2e%2e/etc/hosts", [])[0] == 404


def test_most_specific_route_wins() -> None:
    literal, param, greedy, any_method = (FakeFunction() for _ in range(4))
    table = RouteTable(
        [
            RouteBinding("GET", "/v1/{proxy+}", greedy),
            RouteBinding("GET", "/v1/flows/{flow_id}", param),
            RouteBinding("GET", "/v1/flows/latest", literal),
            RouteBinding("ANY", "/v1/flows/{flow_id}", any_method),
        ]
    )

    assert table.match("GET", "/v1/flows/latest").target is literal
    assert table.match("GET", "/v1/flows/f1").target is param
    assert table.match("POST", "/v1/flows/f1").target is any_method
    assert table.match("GET", "/v1/leads/l1/x").target is greedy
    assert table.match("GET", "/v1") is None
    assert table.match("GET", "/v1/flows/f1/extra").target is greedy


def test_every_spec_route_is_bound_to_its_function() -> None:
    names = {f.name: FakeFunction() for f in spec.FUNCTIONS}

    bindings = bindings_from_spec(names)

    expected = [(f.name, r.method, r.path) for f in spec.FUNCTIONS for r in f.routes]
    name_of = {id(fn): n for n, fn in names.items()}
    assert [(name_of[id(b.target)], b.method, b.path) for b in bindings] == expected
    table = RouteTable(bindings)
    for name, method, path in expected:
        concrete = path.replace("{flow_id}", "f1").replace("{lead_id}", "l1").replace(
            "{phone}", "%2B15555550100"
        )
        match = table.match(method, concrete)
        assert match is not None and match.target is names[name], (method, path)
        assert match.route_key == f"{method} {path}"


def test_plus_in_a_path_parameter_is_kept() -> None:
    target = FakeFunction()
    table = RouteTable([RouteBinding("GET", "/v1/dnc/{phone}", target)])
    request = HttpRequest("GET", "/v1/dnc/+15555550100", [("Host", "x")])

    event = build_event(request, table.match("GET", request.raw_path))

    assert event["pathParameters"] == {"phone": "+15555550100"}


def test_malformed_status_code_is_rejected() -> None:
    with pytest.raises(ValueError):
        response_from_result({"statusCode": "200"})


def test_a_real_handler_module_serves_a_route(tmp_path: Path) -> None:
    # Given a handler file shaped like functions/<name>/handler.py
    (tmp_path / "handler.py").write_text(
        "import json\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'headers': {'content-type': 'application/json'},\n"
        "            'body': json.dumps({'fn': context.function_name,\n"
        "                                'flow': event['pathParameters']['flow_id']})}\n"
    )
    function = LambdaFunction("fake_api", tmp_path / "handler.py", concurrency=2)
    gw = ApiGateway([RouteBinding("GET", "/v1/flows/{flow_id}", function)], port=0)
    gw.start()
    try:
        # When it is called over HTTP
        response = httpx.get(f"{gw.url}/v1/flows/f-9")
    finally:
        gw.stop()

    # Then the handler's reply comes back
    assert response.status_code == 200
    assert response.json() == {"fn": "sendline-fake_api", "flow": "f-9"}


def test_access_log_lines_hide_api_keys_and_phone_numbers():
    from devstack.apigw import redact_target

    assert redact_target("/api.php?action=ext_dnc_check&phone=2125550142&api_key=sl_demo_x") == (
        "/api.php?action=ext_dnc_check&phone=***&api_key=***")
    assert redact_target("/v1/dnc/+12125550142") == "/v1/dnc/***"
    assert redact_target("/v1/leads/ld_01m8ye3nend6h23kdxkqmh81p6") == "/v1/leads/ld_01m8ye3nend6h23kdxkqmh81p6"


def test_concurrent_requests_to_powertools_resolvers_each_see_their_own_request(tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from devstack.lambda_runtime import TakingTurns

    # Given two functions whose handlers are Powertools resolvers that read the request late
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "handler.py").write_text(
            "import time\n"
            "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
            "app = APIGatewayHttpResolver()\n"
            f"@app.post('/{name}')\n"
            "def echo():\n"
            "    time.sleep(0.002)\n"
            "    return {'got': app.current_event.json_body['n']}\n"
            "def handler(event, context):\n"
            "    return app.resolve(event, context)\n"
        )
    turns = threading.Lock()
    bindings = [RouteBinding("POST", f"/{name}", TakingTurns(
        LambdaFunction(name, tmp_path / name / "handler.py", concurrency=4), turns)) for name in ("one", "two")]
    gw = ApiGateway(bindings, port=0)
    gw.start()
    try:
        # When 60 requests arrive at once
        def call(n: int) -> int:
            return httpx.post(f"{gw.url}/{'one' if n % 2 else 'two'}", json={"n": n}, timeout=30).json()["got"]

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(call, range(60)))
    finally:
        gw.stop()

    # Then every handler answered its own request
    assert answers == list(range(60))
