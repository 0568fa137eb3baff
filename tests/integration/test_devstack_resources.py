"""Resources and environment come from the spec; schedules fire as EventBridge would."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack import resources
from devstack.lambda_runtime import InvocationResult
from devstack.ticker import ScheduledTarget, Ticker, rule_arn, scheduled_event, targets_from_spec
from infra import spec


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = resources.start_moto(port=0)
    yield url
    server.stop()


def test_table_and_queues_match_the_spec(moto_url: str) -> None:
    dynamodb = resources.aws_client("dynamodb", moto_url)
    sqs = resources.aws_client("sqs", moto_url)

    queues = resources.create_resources(dynamodb, sqs)
    again = resources.create_resources(dynamodb, sqs)

    assert again == queues
    table = dynamodb.describe_table(TableName=spec.TABLE.name)["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": spec.TABLE.pk, "KeyType": "HASH"},
        {"AttributeName": spec.TABLE.sk, "KeyType": "RANGE"},
    ]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {i.name for i in spec.TABLE.indexes}
    for index in spec.TABLE.indexes:
        assert indexes[index.name]["KeySchema"] == [
            {"AttributeName": index.pk, "KeyType": "HASH"},
            {"AttributeName": index.sk, "KeyType": "RANGE"},
        ]
        assert indexes[index.name]["Projection"] == {"ProjectionType": index.projection}
    ttl = dynamodb.describe_time_to_live(TableName=spec.TABLE.name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": spec.TABLE.ttl_attribute}

    assert set(queues) == {q.name for q in spec.QUEUES}
    for queue_spec in spec.QUEUES:
        queue = queues[queue_spec.name]
        assert queue.url.endswith(f"/sendline-{queue_spec.name}")
        assert queue.dlq_url.endswith(f"/sendline-{queue_spec.name}-dlq")
        attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["VisibilityTimeout"] == str(queue_spec.visibility_timeout_s)
        assert attributes["MessageRetentionPeriod"] == str(queue_spec.retention_s)
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": queue.dlq_arn,
            "maxReceiveCount": queue_spec.max_receive_count,
        }


def test_conditional_writes_are_atomic_under_concurrency(moto_url: str) -> None:
    # Given a counter item and many concurrent conditional increments
    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    key = {"pk": {"S": "COUNTER#atomic"}, "sk": {"S": "C"}}
    dynamodb.put_item(TableName=spec.TABLE.name, Item={**key, "n": {"N": "0"}})
    claims: list[bool] = []

    def increment_and_claim() -> None:
        client = resources.aws_client("dynamodb", moto_url)
        for _ in range(5):
            client.update_item(
                TableName=spec.TABLE.name, Key=key, UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        try:
            client.update_item(
                TableName=spec.TABLE.name, Key=key, UpdateExpression="SET claimed = :t",
                ConditionExpression="attribute_not_exists(claimed)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
            claims.append(True)
        except client.exceptions.ConditionalCheckFailedException:
            claims.append(False)

    # Switching threads as often as possible exposes moto's unlocked read-modify-write.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=increment_and_claim) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)

    # Then no increment is lost and exactly one claim succeeds
    item = dynamodb.get_item(TableName=spec.TABLE.name, Key=key)["Item"]
    assert item["n"] == {"N": "80"}
    assert claims.count(True) == 1


def test_a_cancelled_transaction_leaves_every_item_as_it_was(moto_url: str) -> None:
    # Given an existing message item and a counter
    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    table = spec.TABLE.name
    message = {"pk": {"S": "LEAD#tx"}, "sk": {"S": "MSG#00"}}
    counter = {"pk": {"S": "COUNTER#tx"}, "sk": {"S": "C"}}
    dynamodb.put_item(TableName=table, Item={**message, "status": {"S": "sent"}})
    dynamodb.put_item(TableName=table, Item={**counter, "n": {"N": "5"}})

    # When a transaction adds an item, bumps the counter, then fails its status condition
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "LINK#tx"}, "sk": {"S": "L"}}}},
                {"Update": {"TableName": table, "Key": counter, "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Update": {"TableName": table, "Key": message,
                            "UpdateExpression": "SET #s = :new",
                            "ConditionExpression": "#s = :old",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":new": {"S": "sending"},
                                                          ":old": {"S": "queued"}}}},
            ]
        )

    # Then nothing of it happened
    get = lambda key: dynamodb.get_item(TableName=table, Key=key).get("Item")  # noqa: E731
    assert get({"pk": {"S": "LINK#tx"}, "sk": {"S": "L"}}) is None
    assert get(counter)["n"] == {"N": "5"}
    assert get(message)["status"] == {"S": "sent"}


def test_transaction_cost_does_not_grow_with_the_table(moto_url: str) -> None:
    # moto copies whole tables per transaction; the local stack must not slow down as data grows.
    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    table = spec.TABLE.name
    puts = [
        {"PutRequest": {"Item": {"pk": {"S": f"BULK#{i}"}, "sk": {"S": "M"},
                                 "body": {"S": "x" * 200}}}}
        for i in range(3000)
    ]
    for start in range(0, len(puts), 25):
        dynamodb.batch_write_item(RequestItems={table: puts[start : start + 25]})

    started = time.monotonic()
    for i in range(10):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": table, "Key": {"pk": {"S": f"BULK#{i}"}, "sk": {"S": "M"}},
                            "UpdateExpression": "SET s = :s",
                            "ExpressionAttributeValues": {":s": {"S": "ok"}}}}
            ]
        )
    per_transaction = (time.monotonic() - started) / 10

    # A whole-table copy of 3000 items takes about 75 ms here; an item-level backup about 4 ms.
    assert per_transaction < 0.03


def test_a_table_query_reads_its_partition_with_order_prefix_and_pages(moto_url: str) -> None:
    # Given items in several partitions
    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    for lead in ("A", "B"):
        for sk in ("META", "MSG#00", "MSG#01", "MSG#02"):
            dynamodb.put_item(TableName=spec.TABLE.name,
                              Item={"pk": {"S": f"QLEAD#{lead}"}, "sk": {"S": sk}, "lead": {"S": lead}})

    # When one partition is queried, newest first, with a prefix and a page size of 2
    pages, key = [], None
    while True:
        kwargs = {"ExclusiveStartKey": key} if key else {}
        page = dynamodb.query(TableName=spec.TABLE.name, Limit=2, ScanIndexForward=False,
                              KeyConditionExpression="pk = :pk AND begins_with(sk, :msg)",
                              ExpressionAttributeValues={":pk": {"S": "QLEAD#B"}, ":msg": {"S": "MSG#"}},
                              **kwargs)
        pages.append([(i["lead"]["S"], i["sk"]["S"]) for i in page["Items"]])
        key = page.get("LastEvaluatedKey")
        if not key:
            break

    # Then only that partition's items come back, in order, page by page
    assert pages[0] == [("B", "MSG#02"), ("B", "MSG#01")]
    assert [item for page in pages for item in page] == [("B", "MSG#02"), ("B", "MSG#01"), ("B", "MSG#00")]


def _index_page(dynamodb: Any, pk: str, **kwargs: Any) -> list[tuple[str, str]]:
    found, key = [], None
    while True:
        page = dynamodb.query(TableName=spec.TABLE.name, IndexName="gsi1", KeyConditionExpression="gsi1pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": pk}},
                              **({"ExclusiveStartKey": key} if key else {}), **kwargs)
        found.extend((i["pk"]["S"], i["gsi1sk"]["S"]) for i in page["Items"])
        key = page.get("LastEvaluatedKey")
        if not key:
            return found


def test_an_index_query_sees_every_write_path_into_and_out_of_its_partition(moto_url: str) -> None:
    # Given items put one by one, in a batch and in a transaction into one index partition
    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    table = spec.TABLE.name

    def item(n: int, listing: str = "IDX#A") -> dict[str, Any]:
        return {"pk": {"S": f"IDXITEM#{n}"}, "sk": {"S": "M"}, "gsi1pk": {"S": listing}, "gsi1sk": {"S": f"{n:02d}"}}

    dynamodb.put_item(TableName=table, Item=item(1))
    dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item(n)}} for n in (2, 3, 4)]})
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item(5)}}])
    # an update that creates an item straight into the partition
    dynamodb.update_item(TableName=table, Key={"pk": {"S": "IDXITEM#6"}, "sk": {"S": "M"}},
                         UpdateExpression="SET gsi1pk = :pk, gsi1sk = :sk",
                         ExpressionAttributeValues={":pk": {"S": "IDX#A"}, ":sk": {"S": "06"}})
    # and one in another partition
    dynamodb.put_item(TableName=table, Item=item(7, "IDX#B"))
    assert _index_page(dynamodb, "IDX#A") == [(f"IDXITEM#{n}", f"{n:02d}") for n in range(1, 7)]

    # When items move between partitions, leave the index, are deleted, and a cancelled
    # transaction tries to move one
    key = lambda n: {"pk": {"S": f"IDXITEM#{n}"}, "sk": {"S": "M"}}  # noqa: E731
    dynamodb.update_item(TableName=table, Key=key(2), UpdateExpression="SET gsi1pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": "IDX#B"}})
    dynamodb.transact_write_items(TransactItems=[{"Update": {
        "TableName": table, "Key": key(3), "UpdateExpression": "REMOVE gsi1pk"}}])
    dynamodb.delete_item(TableName=table, Key=key(4))
    dynamodb.update_item(TableName=table, Key=key(7), UpdateExpression="SET gsi1pk = :pk, gsi1sk = :sk",
                         ExpressionAttributeValues={":pk": {"S": "IDX#A"}, ":sk": {"S": "00"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": key(5), "UpdateExpression": "SET gsi1pk = :pk",
                        "ExpressionAttributeValues": {":pk": {"S": "IDX#B"}}}},
            {"ConditionCheck": {"TableName": table, "Key": key(1), "ConditionExpression": "attribute_not_exists(pk)"}},
        ])

    # Then each partition holds exactly its items, in index order, page by page and newest first
    assert _index_page(dynamodb, "IDX#A", Limit=2) == [
        ("IDXITEM#7", "00"), ("IDXITEM#1", "01"), ("IDXITEM#5", "05"), ("IDXITEM#6", "06")]
    assert _index_page(dynamodb, "IDX#A", ScanIndexForward=False, Limit=3) == [
        ("IDXITEM#6", "06"), ("IDXITEM#5", "05"), ("IDXITEM#1", "01"), ("IDXITEM#7", "00")]
    assert _index_page(dynamodb, "IDX#B") == [("IDXITEM#2", "02")]
    # and an item put back into the partition it left is found again
    dynamodb.put_item(TableName=table, Item=item(2))
    assert [pk for pk, _ in _index_page(dynamodb, "IDX#A")] == [
        "IDXITEM#7", "IDXITEM#1", "IDXITEM#2", "IDXITEM#5", "IDXITEM#6"]


def test_an_index_query_never_reads_the_whole_table(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a table with items in and out of an index partition (moto serves in this process)
    from moto.dynamodb.models.table import Table

    dynamodb = resources.aws_client("dynamodb", moto_url)
    resources.create_table(dynamodb)
    for n in range(30):
        dynamodb.put_item(TableName=spec.TABLE.name, Item={
            "pk": {"S": f"WHOLE#{n}"}, "sk": {"S": "M"}, "gsi1pk": {"S": "WHOLE#A" if n < 3 else "WHOLE#B"},
            "gsi1sk": {"S": f"{n:02d}"}})
    whole_table_reads = []
    real_all_items = Table.all_items
    monkeypatch.setattr(Table, "all_items", lambda self: whole_table_reads.append(1) or real_all_items(self))

    # When the index is queried
    found = _index_page(dynamodb, "WHOLE#A")

    # Then its partition's items come back without moto listing the table
    assert (found, whole_table_reads) == ([(f"WHOLE#{n}", f"{n:02d}") for n in range(3)], [])


def test_function_environment_holds_every_contract_variable() -> None:
    queue = resources.QueueResources("sends", "http://q/sends", "arn:q", "http://q/dlq", "arn:d")

    environment = resources.function_environment(
        endpoint_url="http://127.0.0.1:1",
        queues={"sends": queue},
        twilio_api_base="http://127.0.0.1:2",
        twilio_account_sid="AC1",
        twilio_auth_token="tok",
        public_api_url="http://127.0.0.1:3",
        operator_token_sha256="abc",
    )

    assert environment["TABLE_NAME"] == spec.TABLE.name
    assert environment[spec.queue_url_env("sends")] == "http://q/sends"
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert environment["AWS_DEFAULT_REGION"] == "us-east-1"
    assert {
        "TWILIO_API_BASE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_API_URL",
        "OPERATOR_TOKEN_SHA256", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_TRACE_DISABLED",
        "POWERTOOLS_DEV", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED",
    } <= set(environment)


def test_scheduled_event_is_what_eventbridge_delivers() -> None:
    event = scheduled_event(rule_arn("drip_scheduler"), datetime(2024, 5, 1, 10, 0, tzinfo=UTC))

    assert re.fullmatch(r"[0-9a-f-]{36}", event.pop("id"))
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-05-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [
            "arn:aws:events:us-east-1:123456789012:rule/sendline-drip_scheduler-schedule"
        ],
        "detail": {},
    }


class CountingFunction:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: Any) -> InvocationResult:
        self.events.append(event)
        return InvocationResult("r", 1.0, None)


def test_ticker_fires_each_schedule_every_period_until_stopped() -> None:
    function = CountingFunction()
    ticker = Ticker([ScheduledTarget(function, "arn:rule", "job")], every_s=0.1)

    ticker.start()
    time.sleep(0.35)
    ticker.stop()
    fired = len(function.events)
    time.sleep(0.15)

    assert 2 <= fired <= 4
    assert len(function.events) == fired
    assert all(e["resources"] == ["arn:rule"] for e in function.events)


def test_every_scheduled_spec_function_gets_a_target() -> None:
    functions = {f.name: CountingFunction() for f in spec.FUNCTIONS}

    targets = targets_from_spec(functions)

    assert [t.name for t in targets] == [f.name for f in spec.FUNCTIONS if f.schedule]
    assert all(t.function is functions[t.name] for t in targets)
