"""Stages and the app's context, and the stack's outputs (what an operator copies after a deploy)."""

from __future__ import annotations

import pytest

from infra import spec
from tests.infra.cfn import get_att, join, ref


def test_stack_names_carry_the_stage_and_dev_is_the_default(synth, synth_prod):
    assert synth.stack.stack_name == "Sendline-dev"
    assert synth_prod.stack.stack_name == "Sendline-prod"
    assert synth.stack.stage.name == "dev"
    assert synth.template["Description"] == "Sendline SMS platform (dev)"
    assert synth_prod.template["Description"] == "Sendline SMS platform (prod)"


def test_every_function_name_differs_between_stages(synth, synth_prod):
    dev = {synth.function_props(f.name)["FunctionName"] for f in spec.FUNCTIONS}
    prod = {synth_prod.function_props(f.name)["FunctionName"] for f in spec.FUNCTIONS}
    assert dev.isdisjoint(prod)
    assert len(dev) == len(prod) == len(spec.FUNCTIONS)


def test_an_unknown_stage_is_refused():
    from infra.app import create_app, stage_of

    with pytest.raises(ValueError, match="context stage='staging': use one of dev, prod"):
        stage_of(create_app(context={"stage": "staging"}, checks=False))


def test_extra_origins_are_read_from_a_comma_separated_context_value():
    from infra.app import _context_list

    assert _context_list("http://localhost:5173, https://ops.example.com/") == [
        "http://localhost:5173", "https://ops.example.com"]
    assert _context_list(["http://localhost:5173"]) == ["http://localhost:5173"]
    assert _context_list(None) == []
    assert _context_list("") == []


def test_the_app_takes_context_as_the_cdk_command_line_does():
    from infra.app import _parse_context

    assert _parse_context(["-c", "stage=prod", "--context", "alarmEmail=a@example.com"]) == {
        "stage": "prod", "alarmEmail": "a@example.com"}
    with pytest.raises(SystemExit):
        _parse_context(["-c", "stage"])


def test_the_app_reads_cdk_json_feature_flags():
    from infra.app import create_app

    app = create_app(checks=False)
    assert app.node.try_get_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy") is True


def test_outputs_are_what_an_operator_needs_after_a_deploy(synth):
    outputs = synth.template["Outputs"]
    stack = synth.stack
    api_url = get_att(synth.logical_id(stack.http_api), "ApiEndpoint")

    assert {name: output["Value"] for name, output in outputs.items()} == {
        "ApiUrl": api_url,
        "DashboardUrl": join("https://", get_att(synth.logical_id(stack.distribution), "DomainName")),
        "UserPoolId": ref(synth.logical_id(stack.user_pool)),
        "UserPoolClientId": ref(synth.logical_id(stack.user_pool_client)),
        "CognitoDomain": join("https://sendline-dev-", ref("AWS::AccountId"), ".auth.", ref("AWS::Region"),
                              ".amazoncognito.com"),
        "TwilioStatusWebhookUrl": join(api_url, "/webhooks/twilio/status"),
        "TwilioInboundWebhookUrl": join(api_url, "/webhooks/twilio/inbound"),
        "AlarmTopicArn": ref(synth.logical_id(stack.alarm_topic)),
        "ProviderSecretArn": ref(synth.logical_id(stack.provider_secret)),
        "TableName": ref(synth.logical_id(stack.table)),
        "UploadsBucket": ref(synth.logical_id(stack.uploads)),
        "SendsQueueUrl": ref(synth.logical_id(stack.queues["sends"])),
        "ImportsQueueUrl": ref(synth.logical_id(stack.queues["imports"])),
        "SendsDlqUrl": ref(synth.logical_id(stack.dead_letter_queues["sends"])),
        "ImportsDlqUrl": ref(synth.logical_id(stack.dead_letter_queues["imports"])),
    }
    assert outputs["TwilioStatusWebhookUrl"]["Description"] == "Paste into Twilio: POST /webhooks/twilio/status."
    assert outputs["SendsDlqUrl"]["Description"] == "For python -m scripts.dlq: SENDS_DLQ_URL."
