"""The functions: one per spec entry, their runtime, layers, sizing, logs, concurrency and
environment."""

from __future__ import annotations

import json

import pytest

from infra import spec
from infra.layer_build import pinned_version
from infra.stack import (
    METRICS_NAMESPACE,
    PHONE_INTEL_API_BASE,
    POWERTOOLS_LAYER_VERSIONS,
    SERVICE_NAME,
    TWILIO_API_BASE,
    TWILIO_LOOKUP_API_BASE,
)
from tests.infra.cfn import get_att, join, ref

FUNCTION_NAMES = [f.name for f in spec.FUNCTIONS]
POWERTOOLS_LAYER = join(
    "arn:aws:lambda:", ref("AWS::Region"), ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:41")


def test_the_template_has_exactly_the_spec_functions(synth):
    # CDK may add helper functions of its own; the spec's are the ones with our handler.
    ours = {
        logical_id
        for logical_id, f in synth.of_type("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "handler.handler"
    }
    assert ours == {synth.function_id(name) for name in FUNCTION_NAMES}
    assert len(ours) == len(spec.FUNCTIONS)


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_runtime_layers_sizing_and_tracing(synth, function_spec):
    props = synth.function_props(function_spec.name)
    _, shared_layer, deps_layer = synth.stack.layers

    assert props["FunctionName"] == f"sendline-dev-{function_spec.name}"
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert props["Architectures"] == ["arm64"]
    # Lambda applies layers in order, a later one winning: AWS's Powertools first, our pinned
    # third-party packages last.
    assert props["Layers"] == [
        POWERTOOLS_LAYER,
        ref(synth.logical_id(shared_layer)),
        ref(synth.logical_id(deps_layer)),
    ]
    assert props["MemorySize"] == function_spec.memory_mb
    assert props["Timeout"] == function_spec.timeout_s
    assert props["Description"] == function_spec.description
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_the_powertools_layer_is_the_release_pinned_in_the_lock_file():
    assert pinned_version("aws-lambda-powertools") == "3.37.0"
    assert POWERTOOLS_LAYER_VERSIONS == {"3.37.0": 41}


def test_a_powertools_release_without_a_known_layer_version_fails_the_synth():
    from infra.stack import powertools_layer_arn

    with pytest.raises(ValueError, match=r"aws-lambda-powertools 9\.9\.9.*python3\.12/9\.9\.9"):
        powertools_layer_arn("9.9.9")


def test_our_layers_are_built_for_the_functions_runtime_and_cpu(synth):
    _, shared_layer, deps_layer = synth.stack.layers
    for layer, name in ((shared_layer, "sendline-dev-shared"), (deps_layer, "sendline-dev-deps")):
        props = synth.props(layer)
        assert props["LayerName"] == name
        assert props["CompatibleRuntimes"] == ["python3.12"]
        assert props["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_logs_json_to_its_own_group_kept_thirty_days(each_stage, function_spec):
    stage = each_stage.stack.stage.name
    logging = each_stage.function_props(function_spec.name)["LoggingConfig"]
    log_group = each_stage.resources[logging["LogGroup"]["Ref"]]

    assert logging == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": logging["LogGroup"],
    }
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"] == {
        "LogGroupName": f"/aws/lambda/sendline-{stage}-{function_spec.name}",
        "RetentionInDays": 30,
    }
    assert log_group["DeletionPolicy"] == ("Retain" if stage == "prod" else "Delete")


def test_prod_reserves_the_send_workers_concurrency_and_nothing_else(synth_prod):
    reserved = {
        name: synth_prod.function_props(name).get("ReservedConcurrentExecutions") for name in FUNCTION_NAMES
    }
    assert reserved == {name: (5 if name == "send_worker" else None) for name in FUNCTION_NAMES}
    # Exactly what the queue trigger may run at once.
    assert spec.function("send_worker").queue.max_concurrency == 5


def test_dev_reserves_no_concurrency(synth):
    assert all("ReservedConcurrentExecutions" not in synth.function_props(name) for name in FUNCTION_NAMES)


def expected_environment(synth, function_spec: spec.Function) -> dict:
    stack = synth.stack
    expected = {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "PUBLIC_API_URL": get_att(synth.logical_id(stack.http_api), "ApiEndpoint"),
    }
    if function_spec.table_access != "none":
        expected["TABLE_NAME"] = ref(synth.logical_id(stack.table))
    auths = {r.auth for r in function_spec.routes}
    if "api_key_or_operator" in auths:
        expected["COGNITO_ISSUER"] = join(
            "https://cognito-idp.", ref("AWS::Region"), ".amazonaws.com/", ref(synth.logical_id(stack.user_pool)))
        expected["COGNITO_CLIENT_ID"] = ref(synth.logical_id(stack.user_pool_client))
    for queue_name in function_spec.publishes_to:
        expected[spec.queue_url_env(queue_name)] = ref(synth.logical_id(stack.queues[queue_name]))
    if function_spec.needs_provider:
        expected["TWILIO_API_BASE"] = TWILIO_API_BASE
        expected["TWILIO_SECRET_ARN"] = ref(synth.logical_id(stack.provider_secret))
    if function_spec.needs_validation:
        expected["PHONE_INTEL_API_BASE"] = PHONE_INTEL_API_BASE
        expected["TWILIO_LOOKUP_API_BASE"] = TWILIO_LOOKUP_API_BASE
    if function_spec.uses_uploads:
        expected["UPLOADS_BUCKET"] = ref(synth.logical_id(stack.uploads))
    if function_spec.watches_dead_letters or function_spec.operates_queues:
        for queue in spec.QUEUES:
            expected[spec.dlq_url_env(queue.name)] = ref(synth.logical_id(stack.dead_letter_queues[queue.name]))
    if function_spec.operates_queues:
        for queue in spec.QUEUES:
            expected[spec.queue_url_env(queue.name)] = ref(synth.logical_id(stack.queues[queue.name]))
        others = {f.name: f"sendline-dev-{f.name}" for f in spec.FUNCTIONS if f.name != function_spec.name}
        expected[spec.FUNCTION_NAMES_ENV] = json.dumps(others, sort_keys=True, separators=(",", ":"))
    return expected


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_environment_matches_the_contract(synth, function_spec):
    variables = synth.function_props(function_spec.name)["Environment"]["Variables"]
    assert variables == expected_environment(synth, function_spec)


def test_the_ops_api_knows_every_queue_dead_letter_queue_and_other_function(synth):
    variables = synth.function_props("ops_api")["Environment"]["Variables"]
    queues = {name: ref(synth.logical_id(q)) for name, q in synth.stack.queues.items()}
    dlqs = {name: ref(synth.logical_id(q)) for name, q in synth.stack.dead_letter_queues.items()}

    assert variables["SENDS_QUEUE_URL"] == queues["sends"]
    assert variables["IMPORTS_QUEUE_URL"] == queues["imports"]
    assert variables["SENDS_DLQ_URL"] == dlqs["sends"]
    assert variables["IMPORTS_DLQ_URL"] == dlqs["imports"]
    names = json.loads(variables["FUNCTION_NAMES"])
    assert names["send_worker"] == "sendline-dev-send_worker"
    assert names["dlr_webhook"] == "sendline-dev-dlr_webhook"
    assert "ops_api" not in names
    assert sorted(names) == sorted(set(FUNCTION_NAMES) - {"ops_api"})
    # Plain names, no references: the ops API must not depend on every other function.
    assert all(isinstance(value, str) for value in names.values())
    # It touches no table.
    assert "TABLE_NAME" not in variables


def test_functions_with_routes_shared_with_integrators_verify_cognito_tokens(synth):
    with_cognito = {name for name in FUNCTION_NAMES
                    if "COGNITO_ISSUER" in synth.function_props(name)["Environment"]["Variables"]}
    assert with_cognito == {"operator_api", "campaign_api", "reports"}


def test_prod_functions_use_prod_resources(synth_prod):
    variables = synth_prod.function_props("send_worker")["Environment"]["Variables"]
    assert variables["SENDS_QUEUE_URL"] == ref(synth_prod.logical_id(synth_prod.stack.queues["sends"]))
    assert synth_prod.function_props("send_worker")["FunctionName"] == "sendline-prod-send_worker"
    names = json.loads(synth_prod.function_props("ops_api")["Environment"]["Variables"]["FUNCTION_NAMES"])
    assert names["send_worker"] == "sendline-prod-send_worker"


def test_operators_sign_in_with_cognito_only(each_stage):
    # No static operator token on AWS: it would skip the password and TOTP code, and the
    # gateway's JWT authorizer would refuse it on the operator-only routes anyway.
    assert "Parameters" not in each_stage.template or not any(
        "Operator" in name for name in each_stage.template["Parameters"])
    assert {name for name in FUNCTION_NAMES
            if "OPERATOR_TOKEN_SHA256" in each_stage.function_props(name)["Environment"]["Variables"]} == set()
