"""Alarms (dead letters, queue age, every function's errors and throttles, API 5xx rate), the
encrypted TLS-only topic they notify, and the operations dashboard."""

from __future__ import annotations

import json

import pytest

from infra import spec
from infra.stack import RECEIPT_OUTCOMES, SEND_OUTCOMES
from tests.infra.cfn import get_att, ref
from tests.infra.conftest import PROD_ALARM_EMAIL

FUNCTION_NAMES = [f.name for f in spec.FUNCTIONS]
AGED_QUEUES = [q for q in spec.QUEUES if q.oldest_message_alarm_s is not None]


def alarms(synth) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()}


def test_the_alarm_count_is_two_per_function_one_per_dead_letter_queue_queue_age_and_api(each_stage):
    expected = 2 * len(spec.FUNCTIONS) + len(spec.QUEUES) + len(AGED_QUEUES) + 1
    assert len(each_stage.of_type("AWS::CloudWatch::Alarm")) == expected == 2 * 12 + 2 + 1 + 1


def test_every_alarm_notifies_the_alarm_topic_when_it_goes_off_and_when_it_clears(each_stage):
    topic = ref(each_stage.logical_id(each_stage.stack.alarm_topic))
    for name, alarm in alarms(each_stage).items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name  # and when it clears
        assert alarm["TreatMissingData"] == "notBreaching", name


@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=[q.name for q in spec.QUEUES])
def test_a_message_in_a_dead_letter_queue_raises_an_alarm(synth, queue_spec):
    alarm = alarms(synth)[f"sendline-dev-{queue_spec.name}-dead-letters"]
    dlq_name = get_att(synth.logical_id(synth.stack.dead_letter_queues[queue_spec.name]), "QueueName")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == 60
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1


def test_texts_waiting_over_five_minutes_in_the_sends_queue_raise_an_alarm(synth):
    assert [q.name for q in AGED_QUEUES] == ["sends"]
    alarm = alarms(synth)["sendline-dev-sends-oldest-message"]
    queue_name = get_att(synth.logical_id(synth.stack.queues["sends"]), "QueueName")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == 60
    assert alarm["Threshold"] == 300
    assert alarm["EvaluationPeriods"] == 5
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_alarms_on_errors_and_throttles(synth, name):
    function = ref(synth.function_id(name))
    for kind, metric in (("errors", "Errors"), ("throttles", "Throttles")):
        alarm = alarms(synth)[f"sendline-dev-{name}-{kind}"]
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["MetricName"] == metric
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
        assert alarm["Statistic"] == "Sum"
        assert alarm["Period"] == 300
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_share_of_api_requests_answered_5xx_raises_an_alarm(synth):
    alarm = alarms(synth)["sendline-dev-api-5xx-rate"]
    api = ref(synth.logical_id(synth.stack.http_api))
    by_id = {m["Id"]: m for m in alarm["Metrics"]}

    assert alarm["Threshold"] == 5
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert by_id["expr_1"]["Expression"] == "IF(requests > 0, 100 * server_errors / requests, 0)"
    for metric_id, metric_name in (("server_errors", "5xx"), ("requests", "Count")):
        stat = by_id[metric_id]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "AWS/ApiGateway", "MetricName": metric_name,
                                  "Dimensions": [{"Name": "ApiId", "Value": api}]}
        assert stat["Stat"] == "Sum"
        assert stat["Period"] == 300
        assert by_id[metric_id]["ReturnData"] is False


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_and_refuses_plain_http(synth):
    topic_id = synth.logical_id(synth.stack.alarm_topic)
    topic = synth.resources[topic_id]["Properties"]
    ((key_id, key),) = synth.of_type("AWS::KMS::Key").items()
    (policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    assert topic["TopicName"] == "sendline-dev-alarms"
    assert topic["KmsMasterKeyId"] == get_att(key_id, "Arn")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": ref(topic_id),
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements
    (publish,) = [s for s in statements if s.get("Sid") == "CloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    # CloudWatch may use the key to encrypt what it publishes.
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in key_statements if s.get("Sid") == "CloudWatchAlarmsPublish"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_an_alarm_email_is_subscribed_when_given(synth, synth_prod):
    assert synth.of_type("AWS::SNS::Subscription") == {}
    (subscription,) = synth_prod.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": PROD_ALARM_EMAIL,
        "Protocol": "email",
        "TopicArn": ref(synth_prod.logical_id(synth_prod.stack.alarm_topic)),
    }


def dashboard_body(synth) -> str:
    """The dashboard's JSON body with every reference written as its logical id."""
    dashboard = synth.props(synth.stack.operations_dashboard)
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def test_the_operations_dashboard_charts_sends_receipts_queues_and_errors(synth):
    body = dashboard_body(synth)
    assert synth.props(synth.stack.operations_dashboard)["DashboardName"] == "sendline-dev-operations"
    for outcome in SEND_OUTCOMES:
        assert f'"Sendline","Send_{outcome}","service","sendline"' in body
    for outcome in RECEIPT_OUTCOMES:
        assert f'"Sendline","Receipt_{outcome}","service","sendline"' in body
    assert '"AWS/SQS","ApproximateNumberOfMessagesVisible"' in body
    assert '"AWS/SQS","ApproximateAgeOfOldestMessage"' in body
    assert body.count('"AWS/Lambda","Errors"') == len(spec.FUNCTIONS)
    assert body.count('"AWS/Lambda","Throttles"') == len(spec.FUNCTIONS)
    for title in ("Texts sent per minute, by outcome", "Delivery receipts per minute", "Queue depth",
                  "Function errors", "API requests and errors"):
        assert f'"title":"{title}"' in body


def test_the_charted_metric_names_are_the_ones_the_code_emits():
    from sendline.services.delivery import ReceiptResult
    from sendline.services.sending import SendResult

    assert set(SEND_OUTCOMES) <= {r.value for r in SendResult}
    assert set(RECEIPT_OUTCOMES) == {r.value for r in ReceiptResult}
