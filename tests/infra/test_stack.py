"""The synthesized template contains exactly the wiring `infra.spec` describes.

Expected values are computed from the spec, so a new route, queue or schedule is covered
without editing these tests; resource references are followed through Ref / Fn::GetAtt to the
logical ids of the constructs the stack built for each spec entry.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import spec
from infra.stack import (
    METRICS_NAMESPACE,
    PHONE_INTEL_API_BASE,
    SERVICE_NAME,
    TWILIO_API_BASE,
    TWILIO_LOOKUP_API_BASE,
    pascal,
)

FUNCTION_NAMES = [f.name for f in spec.FUNCTIONS]
QUEUE_NAMES = [q.name for q in spec.QUEUES]
CONSUMERS = [f for f in spec.FUNCTIONS if f.queue is not None]
SCHEDULED = [f for f in spec.FUNCTIONS if f.schedule is not None]
SECRET_READ = "secretsmanager:GetSecretValue"


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], action: str, resource: Any) -> bool:
    """Whether an Allow statement grants `action` on exactly `resource` (among its resources)."""
    return any(
        statement["Effect"] == "Allow"
        and action in as_list(statement["Action"])
        and resource in as_list(statement["Resource"])
        for statement in statements
    )


def queue_id(synth, name: str) -> str:
    return synth.logical_id(synth.stack.queues[name])


def dlq_id(synth, name: str) -> str:
    return synth.logical_id(synth.stack.dead_letter_queues[name])


# --- HTTP API ---------------------------------------------------------------------------------


def test_every_spec_route_is_one_api_route_with_its_method_and_path(synth):
    # Given the routes in the spec
    expected = sorted(f"{r.method} {r.path}" for f in spec.FUNCTIONS for r in f.routes)

    # When the template's routes are listed
    route_keys = sorted(
        route["Properties"]["RouteKey"]
        for route in synth.of_type("AWS::ApiGatewayV2::Route").values()
    )

    # Then there is exactly one per spec route, and nothing else
    assert route_keys == expected


def test_every_route_invokes_the_function_the_spec_names(synth):
    routes = synth.of_type("AWS::ApiGatewayV2::Route")
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")
    function_ids = {synth.function_id(name): name for name in FUNCTION_NAMES}
    target_of: dict[str, str] = {}

    for route in routes.values():
        props = route["Properties"]
        prefix, integration_ref = props["Target"]["Fn::Join"][1]
        assert prefix == "integrations/"
        integration = integrations[integration_ref["Ref"]]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        function_logical_id, attribute = integration["IntegrationUri"]["Fn::GetAtt"]
        assert attribute == "Arn"
        target_of[props["RouteKey"]] = function_ids[function_logical_id]

    assert target_of == {f"{r.method} {r.path}": f.name for f in spec.FUNCTIONS for r in f.routes}


def test_api_allows_the_dashboard_headers_from_any_origin(synth):
    (api,) = synth.of_type("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["*"]
    assert cors["AllowHeaders"] == ["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"]
    route_methods = {r.method for f in spec.FUNCTIONS for r in f.routes} - {"ANY"}
    assert set(cors["AllowMethods"]) == route_methods | {"OPTIONS"}


def test_default_stage_deploys_automatically_and_is_throttled(synth):
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 1000,
        "ThrottlingRateLimit": 500,
    }


# --- queues -----------------------------------------------------------------------------------


@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=QUEUE_NAMES)
def test_queue_redrives_to_its_dead_letter_queue(synth, queue_spec):
    queue = synth.resources[queue_id(synth, queue_spec.name)]["Properties"]
    dlq_logical_id = dlq_id(synth, queue_spec.name)
    dlq = synth.resources[dlq_logical_id]["Properties"]

    assert queue["QueueName"] == f"sendline-{queue_spec.name}"
    assert queue["VisibilityTimeout"] == queue_spec.visibility_timeout_s
    assert queue["MessageRetentionPeriod"] == queue_spec.retention_s
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": get_att(dlq_logical_id, "Arn"),
        "maxReceiveCount": queue_spec.max_receive_count,
    }
    assert dlq["QueueName"] == f"sendline-{queue_spec.name}-dlq"
    assert dlq["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=QUEUE_NAMES)
def test_queue_and_dead_letter_queue_refuse_plain_http(synth, queue_spec):
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for logical_id in (queue_id(synth, queue_spec.name), dlq_id(synth, queue_spec.name)):
        (policy,) = [p for p in policies if p["Properties"]["Queues"] == [ref(logical_id)]]
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": get_att(logical_id, "Arn"),
        } in policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=QUEUE_NAMES)
def test_a_message_in_the_dead_letter_queue_raises_an_alarm(synth, queue_spec):
    dlq_name = get_att(dlq_id(synth, queue_spec.name), "QueueName")
    dimension = [{"Name": "QueueName", "Value": dlq_name}]
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Dimensions"] == dimension
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1


@pytest.mark.parametrize("function_spec", CONSUMERS, ids=[f.name for f in CONSUMERS])
def test_queue_consumer_has_one_mapping_with_the_spec_batching(synth, function_spec):
    trigger = function_spec.queue
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == ref(synth.function_id(function_spec.name))
    ]

    assert mappings == [
        {
            "BatchSize": trigger.batch_size,
            "EventSourceArn": get_att(queue_id(synth, trigger.queue), "Arn"),
            "FunctionName": ref(synth.function_id(function_spec.name)),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumBatchingWindowInSeconds": trigger.max_batching_window_s,
            "ScalingConfig": {"MaximumConcurrency": trigger.max_concurrency},
        }
    ]
    assert trigger.max_concurrency >= 2


def test_only_spec_consumers_have_event_source_mappings(synth):
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == len(CONSUMERS)


@pytest.mark.parametrize("function_spec", CONSUMERS, ids=[f.name for f in CONSUMERS])
def test_queue_visibility_is_at_least_six_times_its_consumer_timeout(synth, function_spec):
    queue = synth.resources[queue_id(synth, function_spec.queue.queue)]["Properties"]
    consumer = synth.function_props(function_spec.name)
    assert consumer["Timeout"] == function_spec.timeout_s
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]


# --- schedules --------------------------------------------------------------------------------


def test_one_rule_per_scheduled_function_with_its_expression(synth):
    rules = synth.of_type("AWS::Events::Rule").values()
    function_ids = {synth.function_id(f.name): f.name for f in spec.FUNCTIONS}

    scheduled = {}
    for rule in rules:
        props = rule["Properties"]
        (target,) = props["Targets"]
        scheduled[function_ids[target["Arn"]["Fn::GetAtt"][0]]] = props["ScheduleExpression"]
        assert props["State"] == "ENABLED"

    assert scheduled == {f.name: f.schedule.expression for f in SCHEDULED}
    assert len(rules) == len(SCHEDULED)


# --- table ------------------------------------------------------------------------------------


def test_table_has_the_spec_keys_indexes_and_ttl(synth):
    (logical_id,) = synth.of_type("AWS::DynamoDB::Table")
    table = synth.resources[logical_id]
    props = table["Properties"]
    t = spec.TABLE

    assert props["TableName"] == t.name
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": t.pk, "KeyType": "HASH"},
        {"AttributeName": t.sk, "KeyType": "RANGE"},
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": index.name,
            "KeySchema": [
                {"AttributeName": index.pk, "KeyType": "HASH"},
                {"AttributeName": index.sk, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": index.projection},
        }
        for index in t.indexes
    ]
    key_attributes = [t.pk, t.sk] + [k for i in t.indexes for k in (i.pk, i.sk)]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in key_attributes
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": t.ttl_attribute, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


# --- functions --------------------------------------------------------------------------------


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
def test_function_runtime_handler_layers_and_sizing(synth, function_spec):
    props = synth.function_props(function_spec.name)
    shared_layer, deps_layer = synth.stack.layers

    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert props["Architectures"] == ["arm64"]
    assert props["Layers"] == [
        ref(synth.logical_id(shared_layer)),
        ref(synth.logical_id(deps_layer)),
    ]
    assert props["MemorySize"] == function_spec.memory_mb
    assert props["Timeout"] == function_spec.timeout_s
    assert props["Description"] == function_spec.description
    assert props["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_logs_are_kept_thirty_days(synth, function_spec):
    log_group_ref = synth.function_props(function_spec.name)["LoggingConfig"]["LogGroup"]
    log_group = synth.resources[log_group_ref["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_environment_matches_the_contract(synth, function_spec):
    stack = synth.stack
    expected = {
        "TABLE_NAME": ref(synth.logical_id(stack.table)),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "PUBLIC_API_URL": get_att(synth.logical_id(stack.http_api), "ApiEndpoint"),
        "OPERATOR_TOKEN_SHA256": ref("OperatorTokenSha256"),
    }
    for queue_name in function_spec.publishes_to:
        expected[spec.queue_url_env(queue_name)] = ref(queue_id(synth, queue_name))
    if function_spec.needs_provider:
        expected["TWILIO_API_BASE"] = TWILIO_API_BASE
        expected["TWILIO_SECRET_ARN"] = ref(synth.logical_id(stack.provider_secret))
    if function_spec.needs_validation:
        expected["PHONE_INTEL_API_BASE"] = PHONE_INTEL_API_BASE
        expected["TWILIO_LOOKUP_API_BASE"] = TWILIO_LOOKUP_API_BASE
    if function_spec.uses_uploads:
        expected["UPLOADS_BUCKET"] = ref(synth.logical_id(stack.uploads))
    if function_spec.watches_dead_letters:
        for queue_name in QUEUE_NAMES:
            expected[spec.dlq_url_env(queue_name)] = ref(dlq_id(synth, queue_name))

    variables = synth.function_props(function_spec.name)["Environment"]["Variables"]
    assert variables == expected


def test_contract_constants_have_the_documented_values():
    assert SERVICE_NAME == "sendline"
    assert METRICS_NAMESPACE == "Sendline"
    assert TWILIO_API_BASE == "https://api.twilio.com"


def test_operator_token_hash_is_a_hidden_parameter(synth):
    parameter = synth.template.to_json()["Parameters"]["OperatorTokenSha256"]
    assert parameter["Type"] == "String"
    assert parameter["NoEcho"] is True
    assert parameter["AllowedPattern"] == "^[0-9a-f]{64}$"


# --- permissions ------------------------------------------------------------------------------


def test_send_worker_can_read_the_provider_secret(synth):
    secret = ref(synth.logical_id(synth.stack.provider_secret))
    assert allows(synth.role_statements("send_worker"), SECRET_READ, secret)


def test_lead_submit_cannot_read_the_provider_secret(synth):
    secret = ref(synth.logical_id(synth.stack.provider_secret))
    statements = synth.role_statements("lead_submit")
    assert not allows(statements, SECRET_READ, secret)
    assert not any(
        action.startswith("secretsmanager:")
        for statement in statements
        for action in as_list(statement["Action"])
    )


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_only_provider_functions_read_the_secret(synth, function_spec):
    secret = ref(synth.logical_id(synth.stack.provider_secret))
    statements = synth.role_statements(function_spec.name)
    assert allows(statements, SECRET_READ, secret) is function_spec.needs_provider


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_only_upload_functions_touch_the_uploads_bucket(synth, function_spec):
    objects = {"Fn::Join": ["", [get_att(synth.logical_id(synth.stack.uploads), "Arn"), "/*"]]}
    statements = synth.role_statements(function_spec.name)
    for action in ("s3:GetObject*", "s3:PutObject"):
        assert allows(statements, action, objects) is function_spec.uses_uploads, action


def test_uploads_bucket_is_private_encrypted_and_announces_imports_on_the_imports_queue(synth):
    template = synth.template.to_json()
    bucket = template["Resources"][synth.logical_id(synth.stack.uploads)]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == spec.UPLOADS.expire_days
    notifications = [r["Properties"] for r in template["Resources"].values()
                     if r["Type"] == "Custom::S3BucketNotifications"]
    assert len(notifications) == 1
    (queue_config,) = notifications[0]["NotificationConfiguration"]["QueueConfigurations"]
    assert queue_config["Events"] == ["s3:ObjectCreated:*"]
    assert queue_config["QueueArn"] == get_att(queue_id(synth, spec.UPLOADS.notify_queue), "Arn")
    assert queue_config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": spec.UPLOADS.notify_prefix}]}}


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_reads_and_writes_the_table(synth, function_spec):
    table_arn = get_att(synth.logical_id(synth.stack.table), "Arn")
    statements = synth.role_statements(function_spec.name)
    for action in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allows(statements, action, table_arn), action


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_sends_only_to_the_queues_it_publishes_to(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    for queue_name in QUEUE_NAMES:
        queue_arn = get_att(queue_id(synth, queue_name), "Arn")
        can_send = allows(statements, "sqs:SendMessage", queue_arn)
        assert can_send is (queue_name in function_spec.publishes_to), queue_name


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_only_functions_that_watch_dead_letters_read_their_queue_attributes(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    for queue_name in QUEUE_NAMES:
        dlq_arn = get_att(dlq_id(synth, queue_name), "Arn")
        assert allows(statements, "sqs:GetQueueAttributes", dlq_arn) is function_spec.watches_dead_letters, queue_name
        assert not allows(statements, "sqs:ReceiveMessage", dlq_arn), queue_name


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_consumes_only_its_trigger_queue(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    trigger_queue = function_spec.queue.queue if function_spec.queue else None
    for queue_name in QUEUE_NAMES:
        queue_arn = get_att(queue_id(synth, queue_name), "Arn")
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
            assert allows(statements, action, queue_arn) is (queue_name == trigger_queue), (
                queue_name,
                action,
            )


# --- outputs ----------------------------------------------------------------------------------


def test_outputs_name_the_api_the_table_and_every_queue(synth):
    outputs = synth.template.to_json()["Outputs"]
    expected = {
        "ApiUrl": {"Value": get_att(synth.logical_id(synth.stack.http_api), "ApiEndpoint")},
        "TableName": {"Value": ref(synth.logical_id(synth.stack.table))},
        "UploadsBucket": {"Value": ref(synth.logical_id(synth.stack.uploads))},
    }
    for queue_spec in spec.QUEUES:
        expected[f"{pascal(queue_spec.name)}QueueUrl"] = {
            "Value": ref(queue_id(synth, queue_spec.name))
        }
    assert outputs == expected
    assert "SendsQueueUrl" in outputs
