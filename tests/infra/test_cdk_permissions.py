"""Least privilege: each function's role holds exactly what its code uses, as the spec says."""

from __future__ import annotations

import pytest

from infra import spec
from tests.infra.cfn import actions, allows, as_list, get_att, join, ref, resources_of

FUNCTION_NAMES = [f.name for f in spec.FUNCTIONS]
QUEUE_NAMES = [q.name for q in spec.QUEUES]
SECRET_READ = "secretsmanager:GetSecretValue"
TABLE_READS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem")
TABLE_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


def queue_arn(synth, name: str) -> dict:
    return get_att(synth.logical_id(synth.stack.queues[name]), "Arn")


def dlq_arn(synth, name: str) -> dict:
    return get_att(synth.logical_id(synth.stack.dead_letter_queues[name]), "Arn")


def test_table_access_is_read_write_for_every_function_but_the_ops_api():
    # Each of these writes on some path: rate-limit windows behind every API key, top-ups in
    # reports, pauses in auto_pause, queued marks in the schedulers, statuses in the workers.
    assert {f.name: f.table_access for f in spec.FUNCTIONS} == {
        name: ("none" if name == "ops_api" else "read_write") for name in FUNCTION_NAMES}


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_gets_the_table_access_the_spec_gives_it(synth, function_spec):
    table_arn = get_att(synth.logical_id(synth.stack.table), "Arn")
    indexes = join(table_arn, "/index/*")
    statements = synth.role_statements(function_spec.name)
    for action in TABLE_READS:
        assert allows(statements, action, table_arn) is (function_spec.table_access != "none"), action
        assert allows(statements, action, indexes) is (function_spec.table_access != "none"), action
    for action in TABLE_WRITES:
        assert allows(statements, action, table_arn) is (function_spec.table_access == "read_write"), action
    if function_spec.table_access == "none":
        assert not any(a.startswith("dynamodb:") for a in actions(statements))


def test_the_ops_api_has_no_dynamodb_action_at_all(synth):
    statements = synth.role_statements("ops_api")
    assert [a for a in actions(statements) if a.startswith("dynamodb:")] == []
    assert not allows(statements, "dynamodb:PutItem", get_att(synth.logical_id(synth.stack.table), "Arn"))


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_only_provider_functions_read_the_secret(synth, function_spec):
    secret = ref(synth.logical_id(synth.stack.provider_secret))
    statements = synth.role_statements(function_spec.name)
    assert allows(statements, SECRET_READ, secret) is function_spec.needs_provider
    if not function_spec.needs_provider:
        assert not any(a.startswith("secretsmanager:") for a in actions(statements))
    assert {f.name for f in spec.FUNCTIONS if f.needs_provider} == {"dlr_webhook", "send_worker"}


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_upload_access_is_what_the_spec_says(synth, function_spec):
    bucket_arn = get_att(synth.logical_id(synth.stack.uploads), "Arn")
    objects = join(bucket_arn, "/*")
    statements = synth.role_statements(function_spec.name)
    writes = function_spec.uses_uploads
    reads = function_spec.uses_uploads and function_spec.uploads_access == "read_write"

    assert allows(statements, "s3:PutObject", objects) is writes
    assert allows(statements, "s3:AbortMultipartUpload", objects) is writes
    assert allows(statements, "s3:GetObject", objects) is reads
    assert allows(statements, "s3:ListBucket", bucket_arn) is reads
    assert not any(a.startswith("s3:Delete") for a in actions(statements))


def test_the_operator_api_only_stores_upload_files(synth):
    assert spec.function("operator_api").uploads_access == "write"
    s3_actions = {a for a in actions(synth.role_statements("operator_api")) if a.startswith("s3:")}
    assert s3_actions == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert {a for a in actions(synth.role_statements("contacts_import")) if a.startswith("s3:")} == {
        "s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject", "s3:ListBucket"}


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_sends_only_to_the_queues_it_publishes_to_or_redrives_into(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    for queue_name in QUEUE_NAMES:
        can_send = allows(statements, "sqs:SendMessage", queue_arn(synth, queue_name))
        assert can_send is (queue_name in function_spec.publishes_to or function_spec.operates_queues), queue_name
        assert not allows(statements, "sqs:SendMessage", dlq_arn(synth, queue_name)), queue_name


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_dead_letter_access_is_for_the_functions_that_watch_or_operate_them(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    for queue_name in QUEUE_NAMES:
        dlq = dlq_arn(synth, queue_name)
        watches = function_spec.watches_dead_letters or function_spec.operates_queues
        assert allows(statements, "sqs:GetQueueAttributes", dlq) is watches, queue_name
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask"):
            assert allows(statements, action, dlq) is function_spec.operates_queues, (queue_name, action)


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_consumes_only_its_trigger_queue(synth, function_spec):
    statements = synth.role_statements(function_spec.name)
    trigger_queue = function_spec.queue.queue if function_spec.queue else None
    for queue_name in QUEUE_NAMES:
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
            assert allows(statements, action, queue_arn(synth, queue_name)) is (queue_name == trigger_queue), (
                queue_name, action)


def test_the_ops_api_role_is_exactly_the_queue_tooling_and_metrics(synth):
    statements = synth.role_statements("ops_api")
    queues = [queue_arn(synth, name) for name in QUEUE_NAMES]
    dlqs = [dlq_arn(synth, name) for name in QUEUE_NAMES]

    assert resources_of(statements, "sqs:GetQueueAttributes") == queues + dlqs
    assert resources_of(statements, "sqs:ReceiveMessage") == dlqs
    assert resources_of(statements, "sqs:StartMessageMoveTask") == dlqs
    assert resources_of(statements, "sqs:SendMessage") == queues
    assert resources_of(statements, "cloudwatch:GetMetricData") == ["*"]
    assert actions(statements) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
        "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
        "sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask", "sqs:SendMessage",
        "cloudwatch:GetMetricData",
    }


def test_the_metrics_read_sits_in_a_policy_of_its_own(synth):
    (policy,) = synth.stack.metrics_policies.values()
    document = synth.props(policy)["PolicyDocument"]
    assert document["Statement"] == [{"Action": "cloudwatch:GetMetricData", "Effect": "Allow", "Resource": "*"}]
    assert synth.props(policy)["Roles"] == [ref(synth.logical_id(synth.stack.roles["ops_api"]))]
    others = [name for name in FUNCTION_NAMES if name != "ops_api"]
    assert all("cloudwatch:GetMetricData" not in actions(synth.role_statements(name)) for name in others)


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_role_writes_only_its_own_log_group_and_has_no_managed_policy(synth, function_spec):
    role = synth.props(synth.stack.roles[function_spec.name])
    log_group_arn = get_att(synth.logical_id(synth.stack.log_groups[function_spec.name]), "Arn")
    statements = synth.role_statements(function_spec.name)

    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]
    assert resources_of(statements, "logs:PutLogEvents") == [log_group_arn]
    assert resources_of(statements, "logs:CreateLogStream") == [log_group_arn]
    assert not any(a in ("logs:CreateLogGroup", "*") for a in actions(statements))


@pytest.mark.parametrize("function_spec", spec.FUNCTIONS, ids=FUNCTION_NAMES)
def test_no_function_statement_grants_a_wildcard_action(synth, function_spec):
    for statement in synth.role_statements(function_spec.name):
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
