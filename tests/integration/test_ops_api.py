"""The operator API for the workers: Worker Health and the dead-letter queues, through the real
handler against moto's SQS and CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

import boto3
import pytest
import respx
from botocore.stub import Stubber
from moto.sqs.models import sqs_backends

from sendline import runtime
from sendline.adapters.metrics import CloudWatchMetrics
from sendline.adapters.queue import SendRequest
from sendline.domain.clock import iso
from tests.integration.conftest import DEPLOYED_NAMES, INTEGRATOR, OPERATOR
from tests.integration.test_lead_flow import MESSAGES_URL, make_flow, twilio_created

ACCOUNT, REGION = "123456789012", "us-east-1"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ops(fns, monkeypatch):
    """The handler's clock at NOW, and the queues empty: the uploads bucket's set-up puts S3's
    test event on the imports queue."""
    monkeypatch.setattr(fns.module("ops_api"), "utcnow", lambda: NOW)
    fns.sqs.purge_queue(QueueUrl=fns.queues["imports"].url)
    return fns


def put_metric(namespace, metric, dimension, value, figure, minutes_ago):
    boto3.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": dimension, "Value": value}],
        "Value": figure, "Unit": "Count", "Timestamp": NOW - timedelta(minutes=minutes_ago)}])


def lambda_metric(function, metric, figure, minutes_ago):
    put_metric("AWS/Lambda", metric, "FunctionName", f"sendline-{function}", figure, minutes_ago)


def queue_age(queue_name, seconds, minutes_ago):
    put_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue_name, seconds, minutes_ago)


def send(fns, url, *bodies, delay_s=0, attributes=None):
    for body in bodies:
        extra = {"MessageAttributes": attributes} if attributes else {}
        fns.sqs.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=delay_s, **extra)


def idle(name):
    return {"name": name, "function_name": f"sendline-{name}", "invocations": 0, "errors": 0, "throttles": 0,
            "error_rate": 0.0, "status": "ok"}


def stored_messages(queue_name):
    return {m.id: m for m in sqs_backends[ACCOUNT][REGION].queues[queue_name]._messages}


def use_cloudwatch(monkeypatch, client):
    """The handler reads CloudWatch through `client` (a factory runtime.reset() can still clear)."""
    monkeypatch.setattr(runtime, "metrics", lru_cache(maxsize=1)(lambda: CloudWatchMetrics(client)))


def get(fns, path):
    result = fns.http("GET", path, headers=OPERATOR)
    assert result.status == 200, result.body
    return result.body


# -- Worker Health


@pytest.fixture
def busy(ops):
    """sends: 3 visible, 1 in flight, 2 delayed, 2 dead letters, its oldest message 95 s old;
    imports: 1 visible for 5401 s, past its 5400 s visibility timeout. send_worker ran 15 times
    in the last quarter hour with 3 errors and 1 throttle; contacts_import 4 times, 7 minutes ago."""
    sends, imports = ops.queues["sends"], ops.queues["imports"]
    send(ops, sends.url, *(SendRequest(f"ld_{n}-0").to_body() for n in range(4)))
    ops.sqs.receive_message(QueueUrl=sends.url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    send(ops, sends.url, SendRequest("ld_later-1").to_body(), SendRequest("ld_later-2").to_body(), delay_s=600)
    send(ops, sends.dlq_url, SendRequest("ld_dead-0").to_body(), SendRequest("ld_dead-1").to_body())
    send(ops, imports.url, '{"Records": []}')

    queue_age("sendline-sends", 400, minutes_ago=3)
    queue_age("sendline-sends", 95, minutes_ago=1)
    queue_age("sendline-imports", 5401, minutes_ago=1)
    lambda_metric("send_worker", "Invocations", 10, minutes_ago=2)
    lambda_metric("send_worker", "Errors", 1, minutes_ago=2)
    lambda_metric("send_worker", "Throttles", 1, minutes_ago=2)
    lambda_metric("send_worker", "Invocations", 5, minutes_ago=10)
    lambda_metric("send_worker", "Errors", 2, minutes_ago=10)
    lambda_metric("contacts_import", "Invocations", 4, minutes_ago=7)
    # Outside the window, another namespace's figure of the same name, a function not watched:
    lambda_metric("send_worker", "Invocations", 100, minutes_ago=20)
    put_metric("Sendline", "Errors", "FunctionName", "sendline-send_worker", 50, minutes_ago=2)
    lambda_metric("someone_elses", "Invocations", 7, minutes_ago=2)
    return ops


def test_worker_health_reports_each_queue_and_function_from_sqs_and_cloudwatch(busy):
    health = get(busy, "/v1/ops/worker-health")

    assert health["queues"] == [
        {"name": "imports", "queue_name": "sendline-imports", "visible": 1, "in_flight": 0, "delayed": 0,
         "oldest_age_s": 5401, "dead_letters": 0, "status": "backlog"},
        {"name": "sends", "queue_name": "sendline-sends", "visible": 3, "in_flight": 1, "delayed": 2,
         "oldest_age_s": 95, "dead_letters": 2, "status": "dead_letters"},
    ]
    expected = {name: idle(name) for name in DEPLOYED_NAMES}
    expected["send_worker"].update(invocations=15, errors=3, throttles=1, error_rate=20.0, status="errors")
    expected["contacts_import"].update(invocations=4)
    assert health["functions"] == [expected[name] for name in sorted(expected)]
    assert (health["window_minutes"], health["metrics_error"], health["generated_at"]) == (15, None, iso(NOW))


def test_a_shorter_window_counts_only_its_own_minutes(busy):
    health = get(busy, "/v1/ops/worker-health?window_minutes=5")

    functions = {f["name"]: f for f in health["functions"]}
    assert functions["send_worker"] == {**idle("send_worker"), "invocations": 10, "errors": 1, "throttles": 1,
                                        "error_rate": 10.0, "status": "errors"}
    assert functions["contacts_import"] == idle("contacts_import")
    assert health["window_minutes"] == 5


def test_an_empty_queue_has_no_oldest_age_whatever_cloudwatch_last_said(ops):
    queue_age("sendline-sends", 30, minutes_ago=1)

    sends = get(ops, "/v1/ops/worker-health")["queues"][1]

    assert sends == {"name": "sends", "queue_name": "sendline-sends", "visible": 0, "in_flight": 0, "delayed": 0,
                     "oldest_age_s": None, "dead_letters": 0, "status": "ok"}


def test_without_cloudwatch_the_depths_still_show(ops, monkeypatch):
    cloudwatch = boto3.client("cloudwatch")
    stubber = Stubber(cloudwatch)
    stubber.add_client_error("get_metric_data", service_error_code="AccessDenied", http_status_code=403)
    stubber.activate()
    use_cloudwatch(monkeypatch, cloudwatch)
    send(ops, ops.queues["sends"].url, SendRequest("ld_1-0").to_body())

    health = get(ops, "/v1/ops/worker-health")

    assert health["metrics_error"] == "AccessDenied"
    assert health["queues"][1] == {"name": "sends", "queue_name": "sendline-sends", "visible": 1, "in_flight": 0,
                                   "delayed": 0, "oldest_age_s": None, "dead_letters": 0, "status": "ok"}
    assert health["functions"][0] == {"name": "auto_pause", "function_name": "sendline-auto_pause",
                                      "invocations": None, "errors": None, "throttles": None, "error_rate": None,
                                      "status": "unknown"}


@pytest.mark.parametrize(("query", "field", "reason"), [
    ("window_minutes=0", "window_minutes", "must be a whole number from 1 to 1440"),
    ("window_minutes=1441", "window_minutes", "must be a whole number from 1 to 1440"),
    ("window_minutes=ten", "window_minutes", "must be a whole number from 1 to 1440"),
    ("window_minutes=%D9%A1%D9%A5", "window_minutes", "must be a whole number from 1 to 1440"),  # Arabic-Indic 15
    ("window=15", "window", "is not a parameter of this route; use window_minutes"),
])
def test_a_bad_window_is_a_422_naming_it(ops, query, field, reason):
    result = ops.http("GET", f"/v1/ops/worker-health?{query}", headers=OPERATOR)

    assert result.status == 422
    assert result.body["errors"] == [{"field": field, "reason": reason}]


# -- Dead letters: listing and inspecting


POISON = '{"to": "+12125550142", "body": "Hi Ann, call 8885550123", "note": "lead (212) 555-0199 from facebook", "attempt": 3}'


@pytest.fixture
def dead(ops):
    """Four dead letters on sends (a send request with a message attribute, a first-release send
    request, a poison message naming phones, a text that is not JSON) and one on imports."""
    dlq = ops.queues["sends"].dlq_url
    send(ops, dlq, SendRequest("ld_abc-0").to_body(), attributes={"origin": {"DataType": "String", "StringValue": "campaign"}})
    send(ops, dlq, '{"lead_id": "ld_old", "step": 2}', POISON, "phone 2125550143 failed")
    send(ops, ops.queues["imports"].dlq_url, '{"Records": [{"s3": {"object": {"key": "imports/imp_1/file.csv"}}}]}')
    return ops


def test_the_dead_letter_queues_are_listed_with_their_counts(dead):
    assert get(dead, "/v1/ops/dead-letters") == {"dead_letters": [
        {"queue": "imports", "dlq_name": "sendline-imports-dlq", "messages": 1, "visible": 1, "in_flight": 0},
        {"queue": "sends", "dlq_name": "sendline-sends-dlq", "messages": 4, "visible": 4, "in_flight": 0},
    ], "total": 5}


def test_inspecting_shows_ids_counts_times_and_masked_bodies_and_consumes_nothing(dead):
    shown = get(dead, "/v1/ops/dead-letters/sends")

    stored = stored_messages("sendline-sends-dlq")
    by_body = {m.body: m for m in stored.values()}
    expected_bodies = {
        SendRequest("ld_abc-0").to_body(): ("ld_abc-0", {"message_id": "ld_abc-0"}),
        '{"lead_id": "ld_old", "step": 2}': ("ld_old-2", {"lead_id": "ld_old", "step": 2}),
        POISON: (None, {"to": "+1212***0142", "body": "[23 characters hidden]",
                        "note": "lead +1212***0199 from facebook", "attempt": 3}),
        "phone 2125550143 failed": (None, "phone +1212***0143 failed"),
    }
    expected = [{"sqs_message_id": by_body[raw].id, "message_id": message_id, "receive_count": 1,
                 "sent_at": iso(datetime.fromtimestamp(by_body[raw].sent_timestamp / 1000, UTC)),
                 "first_received_at": iso(datetime.fromtimestamp(
                     by_body[raw].approximate_first_receive_timestamp / 1000, UTC)),
                 "source_queue": "sendline-sends", "body": body}
                for raw, (message_id, body) in expected_bodies.items()]
    assert sorted(shown["messages"], key=lambda m: m["sqs_message_id"]) == sorted(
        expected, key=lambda m: m["sqs_message_id"])
    assert (shown["queue"], shown["dlq_name"], shown["messages_in_queue"], shown["shown"]) == (
        "sends", "sendline-sends-dlq", 4, 4)
    # Nothing was consumed: every message is visible again at once, and a second look counts it.
    listed = get(dead, "/v1/ops/dead-letters")["dead_letters"][1]
    assert (listed["visible"], listed["in_flight"]) == (4, 0)
    again = get(dead, "/v1/ops/dead-letters/sends")["messages"]
    assert sorted(m["receive_count"] for m in again) == [2, 2, 2, 2]


def test_inspecting_shows_at_most_the_limit(dead):
    shown = get(dead, "/v1/ops/dead-letters/sends?limit=2")

    assert (shown["shown"], len(shown["messages"]), shown["messages_in_queue"]) == (2, 2, 4)
    assert get(dead, "/v1/ops/dead-letters")["dead_letters"][1]["visible"] == 4


def test_an_imports_dead_letter_names_its_file(dead):
    shown = get(dead, "/v1/ops/dead-letters/imports")["messages"]

    assert [(m["message_id"], m["source_queue"], m["body"]) for m in shown] == [
        (None, "sendline-imports", {"Records": [{"s3": {"object": {"key": "imports/imp_1/file.csv"}}}]})]


# -- Dead letters: re-driving


def test_redrive_moves_exactly_max_and_leaves_the_rest(ops):
    sends = ops.queues["sends"]
    bodies = [SendRequest(f"ld_{n}-0").to_body() for n in range(5)]
    for n, body in enumerate(bodies):
        send(ops, sends.dlq_url, body, attributes={"n": {"DataType": "Number", "StringValue": str(n)}})

    result = ops.http("POST", "/v1/ops/dead-letters/sends/redrive", json_body={"max": 3}, headers=OPERATOR)

    assert result.status == 200
    assert result.body == {"queue": "sends", "to": "sendline-sends", "moved": 3, "refused": 0, "not_deleted": 0,
                           "remaining": 2}
    moved = {m.body: m for m in stored_messages("sendline-sends").values()}
    left = {m.body for m in stored_messages("sendline-sends-dlq").values()}
    assert len(moved) == 3 and set(moved) | left == set(bodies) and not set(moved) & left
    # Each message's attributes travel with its body.
    assert {body: m.message_attributes for body, m in moved.items()} == {
        body: {"n": {"DataType": "Number", "StringValue": str(bodies.index(body))}} for body in moved}

    # Without a body, the rest (fewer than the default 100) move.
    rest = ops.http("POST", "/v1/ops/dead-letters/sends/redrive", headers=OPERATOR).body
    assert (rest["moved"], rest["remaining"]) == (2, 0)
    assert {m.body for m in stored_messages("sendline-sends").values()} == set(bodies)


def test_redrive_of_an_empty_dead_letter_queue_moves_nothing(ops):
    result = ops.http("POST", "/v1/ops/dead-letters/imports/redrive", json_body={"max": 5}, headers=OPERATOR)

    assert result.body == {"queue": "imports", "to": "sendline-imports", "moved": 0, "refused": 0, "not_deleted": 0,
                           "remaining": 0}


def test_a_redriven_send_of_a_text_already_sent_texts_nobody_again(ops, daytime):
    # Given a lead whose first text was sent
    flow_id = make_flow(ops, drips=[])
    lead = ops.http("POST", "/v1/leads", headers=INTEGRATOR,
                    json_body={"flow_id": flow_id, "phone": "2125550142", "first_name": "Ann"}).body
    with respx.mock(assert_all_called=False) as carrier:
        first = carrier.post(MESSAGES_URL).mock(return_value=twilio_created())
        ops.drain_sends()
    assert first.call_count == 1
    message_id = ops.http("GET", f"/v1/leads/{lead['lead_id']}", headers=OPERATOR).body["messages"][0]["message_id"]
    # ...and its send request dead-lettered all the same (a batch that failed after the send)
    send(ops, ops.queues["sends"].dlq_url, SendRequest(message_id).to_body())

    # When it is re-driven and the worker takes it
    moved = ops.http("POST", "/v1/ops/dead-letters/sends/redrive", headers=OPERATOR).body
    with respx.mock(assert_all_called=False) as carrier:
        again = carrier.post(MESSAGES_URL).mock(return_value=twilio_created())
        responses = ops.drain_sends()

    # Then the carrier is not called again and the text stays sent
    assert (moved["moved"], again.call_count, responses) == (1, 0, [{"batchItemFailures": []}])
    message = ops.http("GET", f"/v1/leads/{lead['lead_id']}", headers=OPERATOR).body["messages"][0]
    assert message["status"] == "sent"


@pytest.mark.parametrize(("body", "status", "field", "reason"), [
    ({"max": 0}, 422, "max", "must be a whole number from 1 to 1000"),
    ({"max": 1001}, 422, "max", "must be a whole number from 1 to 1000"),
    ({"max": "5"}, 422, "max", "must be a whole number from 1 to 1000"),
    ({"max": True}, 422, "max", "must be a whole number from 1 to 1000"),
    ({"max": 5, "queue": "imports"}, 422, "queue", "is not a field of a redrive; send only max"),
    ([5], 422, "body", 'must be a JSON object such as {"max": 10}'),
    ("null", 422, "body", 'must be a JSON object such as {"max": 10}'),
    ('{"max": ', 400, "body", "is not valid JSON (Expecting value at line 1 column 9)"),
])
def test_a_bad_redrive_body_is_refused_naming_the_field(ops, body, status, field, reason):
    send(ops, ops.queues["sends"].dlq_url, SendRequest("ld_1-0").to_body())
    kwargs = {"body": body, "headers": {**OPERATOR, "content-type": "application/json"}} if isinstance(body, str) \
        else {"json_body": body, "headers": OPERATOR}

    result = ops.http("POST", "/v1/ops/dead-letters/sends/redrive", **kwargs)

    assert (result.status, result.body["errors"]) == (status, [{"field": field, "reason": reason}])
    assert get(ops, "/v1/ops/dead-letters")["dead_letters"][1]["messages"] == 1


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/ops/dead-letters/texts"),
    ("POST", "/v1/ops/dead-letters/texts/redrive"),
])
def test_an_unknown_queue_is_a_404_naming_it(ops, method, path):
    result = ops.http(method, path, headers=OPERATOR)

    assert result.status == 404
    assert result.body["errors"] == [
        {"field": "queue", "reason": "no dead-letter queue is called 'texts'; there are: imports, sends"}]


def test_a_bad_limit_is_a_422_naming_it(ops):
    result = ops.http("GET", "/v1/ops/dead-letters/sends?limit=101", headers=OPERATOR)

    assert (result.status, result.body["errors"]) == (
        422, [{"field": "limit", "reason": "must be a whole number from 1 to 100"}])


def test_a_query_parameter_on_a_route_that_takes_none_is_refused_saying_so(ops):
    result = ops.http("POST", "/v1/ops/dead-letters/sends/redrive?max=5", headers=OPERATOR)

    assert (result.status, result.body["errors"]) == (
        422, [{"field": "max", "reason": "is not a parameter of this route; this route takes none"}])


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/ops/worker-health"),
    ("GET", "/v1/ops/dead-letters"),
    ("GET", "/v1/ops/dead-letters/sends"),
    ("POST", "/v1/ops/dead-letters/sends/redrive"),
])
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-the-token"}, {"x-api-key": "sk_test_integrator_key"}])
def test_every_ops_route_wants_the_operator(ops, method, path, headers):
    send(ops, ops.queues["sends"].dlq_url, SendRequest("ld_1-0").to_body())

    result = ops.http(method, path, headers=headers)

    assert result.status == 401
    assert result.body["errors"] == [
        {"field": "authorization", "reason": "send the operator token as 'Authorization: Bearer <token>'"}]
    assert get(ops, "/v1/ops/dead-letters")["dead_letters"][1]["visible"] == 1


def test_the_function_refuses_to_start_without_the_function_names(aws, monkeypatch):
    from devstack.lambda_runtime import InitError, load_handler_copy
    from tests.integration.conftest import ROOT

    monkeypatch.delenv("FUNCTION_NAMES")
    runtime.reset()

    with pytest.raises(InitError, match="FUNCTION_NAMES"):
        load_handler_copy(ROOT / "functions" / "ops_api" / "handler.py", "test_ops_api_without_names")


def test_worker_health_reads_cloudwatch_once(busy, monkeypatch):
    calls = []
    cloudwatch = boto3.client("cloudwatch")
    real = cloudwatch.get_metric_data
    monkeypatch.setattr(cloudwatch, "get_metric_data", lambda **kw: calls.append(kw) or real(**kw))
    use_cloudwatch(monkeypatch, cloudwatch)

    get(busy, "/v1/ops/worker-health")

    assert len(calls) == 1
    assert len(calls[0]["MetricDataQueries"]) == 2 + 3 * len(DEPLOYED_NAMES)

