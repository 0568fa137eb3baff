"""State that survives a restart: secrets reused, every item and queued message restored."""

from __future__ import annotations

import hashlib
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import resources
from devstack.state import (
    StateStore,
    load_or_create_secrets,
    queued_messages,
    restore_snapshot,
    scan_items,
    take_snapshot,
)
from infra import spec

EVERY_TYPE_ITEM = {
    "pk": {"S": "FLOW#f1"},
    "sk": {"S": "META"},
    "gsi1pk": {"S": "FLOWS"},
    "gsi1sk": {"S": "2024-05-01T10:00:00.000Z"},
    "name": {"S": "Spring ☀ promo"},
    "price": {"N": "0.0079"},
    "big": {"N": "123456789012345678901234567890"},
    "negative": {"N": "-42"},
    "raw": {"B": b"\x00\x01\xfe\xff"},
    "tags": {"SS": ["a", "b"]},
    "steps": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x01", b"\x02\x03"]},
    "nothing": {"NULL": True},
    "active": {"BOOL": False},
    "drips": {
        "L": [
            {"M": {"delay": {"N": "60"}, "body": {"S": "hi"}, "sig": {"B": b"\x09"}}},
            {"L": [{"S": "nested"}, {"NULL": True}, {"BOOL": True}]},
        ]
    },
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = resources.start_moto(port=0)
    yield url
    server.stop()


def normalized(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in a stable order with set members sorted (DynamoDB sets have no order)."""

    def value(v: dict[str, Any]) -> dict[str, Any]:
        ((kind, inner),) = v.items()
        if kind in ("SS", "NS", "BS"):
            return {kind: sorted(inner)}
        if kind == "M":
            return {"M": {k: value(x) for k, x in inner.items()}}
        if kind == "L":
            return {"L": [value(x) for x in inner]}
        return {kind: inner}

    return sorted(
        ({k: value(v) for k, v in item.items()} for item in items),
        key=lambda i: (i["pk"]["S"], i["sk"]["S"]),
    )


def test_snapshot_round_trips_every_item_type_and_queued_messages(
    moto_url: str, tmp_path: Path
) -> None:
    # Given a table holding an item of every DynamoDB type and a queue with messages,
    # one of them delayed and one already dead-lettered
    suffix = uuid.uuid4().hex[:8]
    table = spec.Table(
        name=f"state-{suffix}", pk="pk", sk="sk", ttl_attribute="expires_at",
        indexes=spec.TABLE.indexes,
    )
    dynamodb = resources.aws_client("dynamodb", moto_url)
    sqs = resources.aws_client("sqs", moto_url)
    resources.create_table(dynamodb, table)
    queue = resources.create_queue(sqs, spec.Queue(f"q{suffix}", 30, 3))
    dynamodb.put_item(TableName=table.name, Item=EVERY_TYPE_ITEM)
    for n in range(30):
        dynamodb.put_item(
            TableName=table.name,
            Item={"pk": {"S": f"LEAD#{n:02d}"}, "sk": {"S": "META"}, "n": {"N": str(n)}},
        )
    sqs.send_message(
        QueueUrl=queue.url,
        MessageBody='{"message_id": "m1"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "drip"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    sqs.send_message(QueueUrl=queue.url, MessageBody="later", DelaySeconds=120)
    sqs.send_message(QueueUrl=queue.dlq_url, MessageBody="poison")
    # An in-flight message (received, not deleted) is still part of the queue's state.
    sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1)
    before_items = scan_items(dynamodb, table.name)
    queue_urls = {queue.queue_name: queue.url, queue.dlq_name: queue.dlq_url}

    # When the state is saved, everything is lost, and the state is restored
    store = StateStore(tmp_path)
    store.save(take_snapshot(dynamodb, table.name, queue_urls))
    dynamodb.delete_table(TableName=table.name)
    for url in queue_urls.values():
        sqs.delete_queue(QueueUrl=url)
    resources.create_table(dynamodb, table)
    queue = resources.create_queue(sqs, spec.Queue(f"q{suffix}", 30, 3))
    summary = restore_snapshot(
        store.load(), dynamodb, sqs, {queue.queue_name: queue.url, queue.dlq_name: queue.dlq_url}
    )

    # Then every item comes back exactly, types included
    assert summary.items == 31
    after_items = scan_items(dynamodb, table.name)
    assert normalized(after_items) == normalized(before_items)
    restored = next(i for i in after_items if i["pk"] == {"S": "FLOW#f1"})
    assert restored["raw"] == {"B": b"\x00\x01\xfe\xff"}
    assert restored["big"] == EVERY_TYPE_ITEM["big"]
    # And so does every message, with its attributes and the rest of its delay
    assert summary.messages == {queue.queue_name: 2, queue.dlq_name: 1}
    on_queue = {m["body"]: m for m in queued_messages(queue.queue_name)}
    assert set(on_queue) == {'{"message_id": "m1"}', "later"}
    assert on_queue['{"message_id": "m1"}']["attributes"] == {
        "kind": {"DataType": "String", "StringValue": "drip"},
        "blob": {"DataType": "Binary", "BinaryValue": "AP8="},
    }
    assert 100 < on_queue["later"]["delay_s"] <= 120
    assert [m["body"] for m in queued_messages(queue.dlq_name)] == ["poison"]
    received = sqs.receive_message(
        QueueUrl=queue.url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert [m["MessageAttributes"]["blob"]["BinaryValue"] for m in received] == [b"\x00\xff"]


def test_snapshot_file_is_written_atomically_as_json(moto_url: str, tmp_path: Path) -> None:
    store = StateStore(tmp_path)

    store.save({"format": 1, "table": {"name": "t", "items": []}, "queues": {}})
    store.save({"format": 1, "table": {"name": "t", "items": [{"pk": {"S": "x"}}]}, "queues": {}})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.json"]
    assert json.loads((tmp_path / "snapshot.json").read_text())["table"]["items"] == [
        {"pk": {"S": "x"}}
    ]


def test_secrets_are_generated_once_then_reused(tmp_path: Path) -> None:
    first = load_or_create_secrets(tmp_path)
    second = load_or_create_secrets(tmp_path)

    assert first == second
    assert first.twilio_account_sid.startswith("AC") and len(first.twilio_account_sid) == 34
    assert len(first.twilio_auth_token) == 32
    assert first.operator_token != first.api_key
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert first.operator_token_sha256 == hashlib.sha256(first.operator_token.encode()).hexdigest()
    assert load_or_create_secrets(tmp_path / "other") != first
