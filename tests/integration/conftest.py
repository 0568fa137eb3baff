"""Handlers invoked in-process with real-shaped events against moto (no network)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from devstack import apigw
from devstack.lambda_runtime import LambdaContext, load_handler_copy
from devstack.pollers import sqs_event
from devstack.resources import bucket_name, create_resources, tune_moto
from infra import spec
from sendline import runtime
from sendline.services.api_keys import register_api_key

ROOT = Path(__file__).resolve().parents[2]
API_URL = "https://api.sendline.test"
OPERATOR_TOKEN = "operator-token-for-tests"
API_KEY = "sk_test_integrator_key"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "f" * 32
TWILIO_BASE = "https://twilio.test"


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any


class Functions:
    """Loads each function's handler once per test and invokes it with AWS-shaped events."""

    def __init__(self, queues: dict[str, Any]):
        self.queues = queues
        self._modules: dict[str, Any] = {}
        self._routes = apigw.RouteTable(apigw.bindings_from_spec({f.name: f.name for f in spec.FUNCTIONS}))
        self.sqs = boto3.client("sqs")

    def handler(self, name: str) -> Any:
        return self.module(name).handler

    def module(self, name: str) -> Any:
        """The function's handler module, e.g. to give it a fixed clock."""
        if name not in self._modules:
            self._modules[name] = load_handler_copy(ROOT / "functions" / name / "handler.py",
                                                    f"test_fn_{name}_{id(self)}")[0]
        return self._modules[name]

    def context(self, name: str) -> LambdaContext:
        function = spec.function(name)
        return LambdaContext(function_name=f"sendline-{name}", memory_limit_in_mb=function.memory_mb,
                             timeout_s=function.timeout_s, log_stream_name="test")

    def http(self, method: str, target: str, *, json_body: Any = None, body: bytes | str | None = None,
             headers: dict[str, str] | None = None, host: str = "api.sendline.test") -> HttpResult:
        raw = body.encode() if isinstance(body, str) else (body or b"")
        all_headers = {"host": host, "user-agent": "pytest", **(headers or {})}
        if json_body is not None:
            raw = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        request = apigw.HttpRequest(method=method, target=target, headers=list(all_headers.items()), body=raw,
                                    source_ip="203.0.113.9", server_port=443)
        match = self._routes.match(method, request.raw_path)
        assert match is not None, f"no route for {method} {request.raw_path}"
        event = apigw.build_event(request, match)
        event["headers"]["x-forwarded-proto"] = "https"
        result = self.handler(match.target)(event, self.context(match.target))
        text = result.get("body") or ""
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return HttpResult(result["statusCode"], {k.lower(): v for k, v in (result.get("headers") or {}).items()},
                          parsed)

    def drain_sends(self, max_rounds: int = 10) -> list[dict[str, Any]]:
        """Deliver what is on the sends queue to the worker until it is empty; returns responses."""
        responses = []
        queue = self.queues["sends"]
        for _ in range(max_rounds):
            received = self.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                break
            response = self.handler("send_worker")(sqs_event(messages, queue.arn), self.context("send_worker"))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            responses.append(response)
        return responses

    def tick(self, function: str = "drip_scheduler") -> dict[str, Any]:
        """One EventBridge schedule event to a scheduled function."""
        event = {"version": "0", "id": "tick", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-12-03T00:00:00Z", "region": "us-east-1",
                 "resources": [], "detail": {}}
        return self.handler(function)(event, self.context(function))

    def drain_imports(self) -> int:
        """Deliver the uploads' S3 notifications to the import function; returns how many
        announced an upload (S3's own test event, sent when the bucket is set up, is not one)."""
        queue = self.queues["imports"]
        delivered = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1).get("Messages", [])
            if not messages:
                return delivered
            response = self.handler("contacts_import")(sqs_event(messages, queue.arn), self.context("contacts_import"))
            assert response == {"batchItemFailures": []}, response
            self.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=messages[0]["ReceiptHandle"])
            delivered += "s3:TestEvent" not in messages[0]["Body"]


# What the stack gives the functions that operate the queues: every other function's deployed name.
DEPLOYED_NAMES = {f.name: f"sendline-{f.name}" for f in spec.FUNCTIONS if not f.operates_queues}


@contextmanager
def moto_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A fresh moto account with the stack's resources, the functions' settings and the
    integrator's key, until the block ends."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": spec.TABLE.name, "PUBLIC_API_URL": API_URL,
        "OPERATOR_TOKEN_SHA256": hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest(),
        "TWILIO_API_BASE": TWILIO_BASE, "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "POWERTOOLS_SERVICE_NAME": "sendline", "POWERTOOLS_METRICS_NAMESPACE": "Sendline",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
        spec.FUNCTION_NAMES_ENV: json.dumps(DEPLOYED_NAMES),
    }
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    tune_moto()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        queues = create_resources(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3"))
        for name, queue in queues.items():
            monkeypatch.setenv(spec.queue_url_env(name), queue.url)
            monkeypatch.setenv(spec.dlq_url_env(name), queue.dlq_url)
        monkeypatch.setenv("UPLOADS_BUCKET", bucket_name())
        runtime.reset()
        register_api_key(API_KEY, "integration tests")
        try:
            yield {"queues": queues}
        finally:
            runtime.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with moto_account(monkeypatch) as account:
        yield account


def steady_send_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The send worker waits for its turns on a SteadyClock."""
    from types import SimpleNamespace

    from sendline.services import sending

    clock = SteadyClock()
    monkeypatch.setattr(sending, "time", SimpleNamespace(sleep=clock.sleep, monotonic=clock.monotonic))


class SteadyClock:
    """The send worker's clock in these tests: a wait for a turn ends exactly at the turn. On a
    busy machine a real sleep ends a few milliseconds late, and a worker that reaches its turn
    late takes another one (services/sending.py), so real sleeps would make outcomes depend on
    the machine's load. How a late worker behaves is tested on its own."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)


@pytest.fixture
def fns(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Functions:
    steady_send_clock(monkeypatch)
    return Functions(aws["queues"])


# A Thursday, 13:00 in New York, 10:00 in Los Angeles, 08:00 in Honolulu: inside the send windows.
DAYTIME = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


@pytest.fixture
def daytime(fns: Functions, monkeypatch: pytest.MonkeyPatch) -> dict[str, datetime]:
    """Every handler's clock (and the lead API's) fixed at DAYTIME, settable through the
    returned dict's "value": texts are held outside recipients' send windows, so a test that
    sends must not depend on the hour it runs at."""
    from sendline import http

    now = {"value": DAYTIME}
    for function in spec.FUNCTIONS:
        module = fns.module(function.name)
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", lambda: now["value"])
    monkeypatch.setattr(http, "utcnow", lambda: now["value"])
    return now


OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
INTEGRATOR = {"x-api-key": API_KEY}


def form(params: dict[str, str]) -> str:
    return urlencode(params)
