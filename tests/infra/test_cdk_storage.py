"""The table, the queues and their dead-letter queues, the uploads bucket and the schedules,
per stage; expected values come from the spec."""

from __future__ import annotations

import pytest

from infra import spec
from tests.infra.cfn import BLOCK_ALL_PUBLIC_ACCESS, S3_MANAGED_ENCRYPTION, get_att, ref

QUEUE_NAMES = [q.name for q in spec.QUEUES]
CONSUMERS = [f for f in spec.FUNCTIONS if f.queue is not None]
SCHEDULED = [f for f in spec.FUNCTIONS if f.schedule is not None]


def queue_id(synth, name: str) -> str:
    return synth.logical_id(synth.stack.queues[name])


def dlq_id(synth, name: str) -> str:
    return synth.logical_id(synth.stack.dead_letter_queues[name])


# --- table ------------------------------------------------------------------------------------


def test_table_has_the_spec_keys_indexes_ttl_and_recovery(each_stage):
    (logical_id,) = each_stage.of_type("AWS::DynamoDB::Table")
    props = each_stage.resources[logical_id]["Properties"]
    t = spec.TABLE

    assert props["TableName"] == f"sendline-{each_stage.stack.stage.name}"
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
    assert [i["IndexName"] for i in props["GlobalSecondaryIndexes"]] == ["gsi1", "due", "log"]
    key_attributes = [t.pk, t.sk] + [k for i in t.indexes for k in (i.pk, i.sk)]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in key_attributes
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_prod_table_is_protected_and_kept_when_the_stack_goes(synth_prod):
    (table,) = synth_prod.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_dev_table_goes_with_the_stack(synth):
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    assert table["DeletionPolicy"] == "Delete"
    assert table["UpdateReplacePolicy"] == "Delete"


# --- queues -----------------------------------------------------------------------------------


@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=QUEUE_NAMES)
def test_queue_redrives_to_its_encrypted_dead_letter_queue(each_stage, queue_spec):
    stage = each_stage.stack.stage.name
    queue = each_stage.resources[queue_id(each_stage, queue_spec.name)]["Properties"]
    dlq_logical_id = dlq_id(each_stage, queue_spec.name)
    dlq = each_stage.resources[dlq_logical_id]["Properties"]

    assert queue["QueueName"] == f"sendline-{stage}-{queue_spec.name}"
    assert queue["VisibilityTimeout"] == queue_spec.visibility_timeout_s
    assert queue["MessageRetentionPeriod"] == queue_spec.retention_s
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": get_att(dlq_logical_id, "Arn"),
        "maxReceiveCount": queue_spec.max_receive_count,
    }
    assert dlq["QueueName"] == f"sendline-{stage}-{queue_spec.name}-dlq"
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_sends_queue_is_named_for_its_stage(synth, synth_prod):
    assert synth.props(synth.stack.queues["sends"])["QueueName"] == "sendline-dev-sends"
    assert synth_prod.props(synth_prod.stack.queues["sends"])["QueueName"] == "sendline-prod-sends"
    assert synth.props(synth.stack.queues["sends"])["RedrivePolicy"]["maxReceiveCount"] == 8


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


@pytest.mark.parametrize("function_spec", CONSUMERS, ids=[f.name for f in CONSUMERS])
def test_queue_consumer_has_one_mapping_with_partial_batch_responses(synth, function_spec):
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
    assert len(mappings) == len(CONSUMERS) == 2


@pytest.mark.parametrize("function_spec", CONSUMERS, ids=[f.name for f in CONSUMERS])
def test_queue_visibility_is_at_least_six_times_its_consumer_timeout(synth, function_spec):
    queue = synth.resources[queue_id(synth, function_spec.queue.queue)]["Properties"]
    consumer = synth.function_props(function_spec.name)
    assert consumer["Timeout"] == function_spec.timeout_s
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]


def test_send_worker_queue_visibility_is_exactly_six_times_its_timeout(synth):
    assert synth.function_props("send_worker")["Timeout"] == 30
    assert synth.props(synth.stack.queues["sends"])["VisibilityTimeout"] == 180


# --- uploads bucket ---------------------------------------------------------------------------


def test_uploads_bucket_is_private_encrypted_logged_and_announces_imports(synth):
    bucket_id = synth.logical_id(synth.stack.uploads)
    bucket = synth.resources[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == BLOCK_ALL_PUBLIC_ACCESS
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == S3_MANAGED_ENCRYPTION
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == spec.UPLOADS.expire_days
    assert bucket["LoggingConfiguration"] == {
        "DestinationBucketName": ref(synth.logical_id(synth.stack.access_logs)), "LogFilePrefix": "s3/uploads/"}
    notifications = [r["Properties"] for r in synth.resources.values() if r["Type"] == "Custom::S3BucketNotifications"]
    assert len(notifications) == 1
    (queue_config,) = notifications[0]["NotificationConfiguration"]["QueueConfigurations"]
    assert queue_config["Events"] == ["s3:ObjectCreated:*"]
    assert queue_config["QueueArn"] == get_att(queue_id(synth, spec.UPLOADS.notify_queue), "Arn")
    assert queue_config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": spec.UPLOADS.notify_prefix}]}}


def test_uploads_accept_browser_uploads_from_the_dashboard_origins_only(synth):
    bucket = synth.props(synth.stack.uploads)
    dashboard = {"Fn::Join": ["", ["https://", get_att(synth.logical_id(synth.stack.distribution), "DomainName")]]}
    assert bucket["CorsConfiguration"] == {"CorsRules": [{
        "AllowedHeaders": ["Content-Type"],
        "AllowedMethods": ["PUT", "GET"],
        "AllowedOrigins": [dashboard, "http://localhost:5173"],
        "MaxAge": 3000,
    }]}


def test_buckets_are_kept_in_prod_and_emptied_and_removed_in_dev(synth, synth_prod):
    for construct in ("uploads", "dashboard_bucket", "access_logs"):
        prod = synth_prod.resources[synth_prod.logical_id(getattr(synth_prod.stack, construct))]
        dev = synth.resources[synth.logical_id(getattr(synth.stack, construct))]
        assert (prod["DeletionPolicy"], prod["UpdateReplacePolicy"]) == ("Retain", "Retain"), construct
        assert (dev["DeletionPolicy"], dev["UpdateReplacePolicy"]) == ("Delete", "Delete"), construct
    assert len(synth.of_type("Custom::S3AutoDeleteObjects")) == 3
    assert synth_prod.of_type("Custom::S3AutoDeleteObjects") == {}


# --- schedules --------------------------------------------------------------------------------


def test_one_rule_per_scheduled_function_with_its_expression(synth):
    rules = synth.of_type("AWS::Events::Rule").values()
    function_ids = {synth.function_id(f.name): f.name for f in spec.FUNCTIONS}

    scheduled = {}
    for rule in rules:
        props = rule["Properties"]
        (target,) = props["Targets"]
        name = function_ids[target["Arn"]["Fn::GetAtt"][0]]
        scheduled[name] = props["ScheduleExpression"]
        assert props["State"] == "ENABLED"
        assert props["Name"] == f"sendline-dev-{name}"

    assert scheduled == {f.name: f.schedule.expression for f in SCHEDULED}
    assert scheduled == {"campaign_dispatcher": "rate(1 minute)", "auto_pause": "rate(1 minute)",
                         "drip_scheduler": "rate(1 minute)"}
