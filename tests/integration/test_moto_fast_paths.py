"""moto_fast_paths changes what moto's DynamoDB costs, never what it answers: the same requests,
sent to a table with the fast paths and to one without, get the same answers, the same errors
(code and message) and leave the same items, through every short cut and every case it leaves
to moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack.resources import tune_moto
from tests.integration import moto_fast_paths

TABLE = "fast-paths"
BIG = "x" * 300_000  # with another like it, over moto's 405,000-byte item limit
KEY = {"pk": {"S": "P#1"}, "sk": {"S": "A"}}
COUNTER = {"pk": {"S": "CTR#ALL#0"}, "sk": {"S": "TOTAL"}}
STORE_UPDATE = "SET #s0 = :s0, #s1 = :s1 REMOVE #r0 ADD #a0 :a0, #a1 :a1"  # the store's shape
STATUS = "#c_status = :old_status"


def update(key: dict[str, Any], expression: str, names: dict[str, str], values: dict[str, Any] | None = None,
           **extra: Any) -> tuple[str, dict[str, Any]]:
    params = {"TableName": TABLE, "Key": key, "UpdateExpression": expression, "ExpressionAttributeNames": names,
              **extra}
    if values is not None:
        params["ExpressionAttributeValues"] = values
    return "update_item", params


def put(item: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
    return "put_item", {"TableName": TABLE, "Item": item, **extra}


def get(key: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
    return "get_item", {"TableName": TABLE, "Key": key, "ConsistentRead": True, **extra}


def counter_op(key: dict[str, Any], **adds: str) -> dict[str, Any]:
    names = {f"#a{i}": name for i, name in enumerate(adds)}
    return {"Update": {"TableName": TABLE, "Key": key,
                       "UpdateExpression": "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(adds))),
                       "ExpressionAttributeNames": names,
                       "ExpressionAttributeValues": {f":a{i}": {"N": n} for i, n in enumerate(adds.values())}}}


STORE_NAMES = {"#s0": "status", "#s1": "payload", "#r0": "due_pk", "#a0": "sent", "#a1": "tags"}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    # Every kind of value, stored and read back (binary and empty values are moto's to answer)
    put({**KEY, "status": {"S": "queued"}, "n": {"N": "1.50"}, "flag": {"BOOL": True}, "none": {"NULL": True},
         "list": {"L": [{"S": "a"}, {"N": "2"}, {"M": {"k": {"S": "v"}}}]},
         "map": {"M": {"a": {"S": "b"}, "l": {"L": []}}},
         "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bin": {"B": b"\x00\x01"}, "empty_list": {"L": []},
         "empty_map": {"M": {}}, "blank": {"S": ""}, "due_pk": {"S": "DUE#1"}, "gpk": {"S": "G#1"},
         "gsk": {"S": "2026-12-01"}}),
    get(KEY),
    get(KEY, ProjectionExpression="#s, #m.a, ns", ExpressionAttributeNames={"#s": "status", "#m": "map"}),
    put({**KEY, "status": {"S": "other"}}, ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    # The store's updates: on an item that exists, and on one that does not yet
    update(KEY, STORE_UPDATE, STORE_NAMES, {":s0": {"S": "sent"}, ":s1": {"M": {"to": {"S": "+1212"}}},
                                            ":a0": {"N": "1"}, ":a1": {"SS": ["x", "a"]}}, ReturnValues="ALL_NEW"),
    update(KEY, STORE_UPDATE, STORE_NAMES, {":s0": {"S": "delivered"}, ":s1": {"L": [{"N": "3"}]},
                                            ":a0": {"N": "2.25"}, ":a1": {"SS": ["y", "x"]}},
           ReturnValues="UPDATED_OLD"),
    update({"pk": {"S": "P#2"}, "sk": {"S": "A"}}, STORE_UPDATE, STORE_NAMES,
           {":s0": {"S": "new"}, ":s1": {"BOOL": False}, ":a0": {"N": "-1"}, ":a1": {"SS": ["z"]}},
           ReturnValues="UPDATED_NEW"),
    update(KEY, "SET #s0 = :s0", {"#s0": "status"}, {":s0": {"S": "x"}}, ReturnValues="ALL_OLD"),
    update(KEY, "REMOVE #r0, #r1", {"#r0": "flag", "#r1": "absent"}, ReturnValues="ALL_NEW"),
    update(COUNTER, "ADD #a0 :a0, #a1 :a1", {"#a0": "sent", "#a1": "c|AT&T|sent"},
           {":a0": {"N": "1"}, ":a1": {"N": "1"}}),
    update(COUNTER, "ADD #a0 :a0, #a1 :a1", {"#a0": "sent", "#a1": "e|30007"}, {":a0": {"N": "3"}, ":a1": {"N": "1"}},
           ReturnValues="ALL_NEW"),
    # A condition, passing, then the same one failing (read from the cache), then other values
    update(KEY, "SET #s0 = :s0", {"#s0": "status", "#c_status": "status"}, {":s0": {"S": "sending"},
                                                                          ":old_status": {"S": "x"}},
           ConditionExpression=STATUS, ReturnValues="ALL_NEW"),
    update(KEY, "SET #s0 = :s0", {"#s0": "status", "#c_status": "status"}, {":s0": {"S": "sending"},
                                                                          ":old_status": {"S": "x"}},
           ConditionExpression=STATUS, ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    update(KEY, "SET #s0 = :s0", {"#s0": "status", "#c_status": "status"}, {":s0": {"S": "sent"},
                                                                          ":old_status": {"S": "sending"}},
           ConditionExpression=STATUS + " AND attribute_exists(#s0)"),
    # What moto refuses, and what the short cut leaves to it
    update(KEY, "SET #k = :v", {"#k": "pk"}, {":v": {"S": "P#9"}}),
    update(KEY, "SET #a = :a REMOVE #a", {"#a": "n"}, {":a": {"N": "1"}}),
    update(KEY, "SET #a = :a, #b = :b", {"#a": "n", "#b": "n"}, {":a": {"N": "1"}, ":b": {"N": "2"}}),
    update(KEY, "SET #a = :a", {"#x": "n"}, {":a": {"N": "1"}}),
    update(KEY, "SET #a = :a", {"#a": "n"}, {":a": {"N": "1"}, ":unused": {"N": "2"}}),
    update(KEY, "SET #a = :a", {"#a": "n", "#unused": "m"}, {":a": {"N": "1"}}),
    update(KEY, "SET #a = :missing", {"#a": "n"}, {":a": {"N": "1"}}),
    update(KEY, "ADD #a :a", {"#a": "n"}, {":a": {"S": "one"}}),
    update(KEY, "ADD #a :a", {"#a": "status"}, {":a": {"N": "1"}}),
    update(KEY, "ADD #a :a", {"#a": "ss"}, {":a": {"NS": ["1"]}}),
    update(KEY, "ADD #a :a", {"#a": "fresh_ns"}, {":a": {"NS": ["3", "1"]}}, ReturnValues="UPDATED_NEW"),
    update(KEY, "SET #a = :a", {"#a": "blank2"}, {":a": {"S": ""}}, ReturnValues="ALL_NEW"),
    update(KEY, "SET #a = :a", {"#a": "bin2"}, {":a": {"B": b"\xff"}}, ReturnValues="UPDATED_NEW"),
    update(KEY, "SET #a = :a", {"#a": "weird"}, {":a": {"N": "not a number"}}),
    update(KEY, "SET #m.#k = :v", {"#m": "map", "#k": "c"}, {":v": {"S": "d"}}, ReturnValues="UPDATED_NEW"),
    update(KEY, "SET #a = #a + :one", {"#a": "n"}, {":one": {"N": "1"}}, ReturnValues="UPDATED_NEW"),
    update(KEY, "SET #l[0] = :v REMOVE #l[1]", {"#l": "list"}, {":v": {"S": "z"}}, ReturnValues="UPDATED_NEW"),
    # Item size: moto counts the value being replaced, and stops half way through an update
    put({"pk": {"S": "BIG"}, "sk": {"S": "A"}, "a": {"S": BIG}}),
    update({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, "SET #a = :a", {"#a": "a"}, {":a": {"S": BIG + "y"}}),
    update({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, "SET #s = :s, #b = :b", {"#s": "small", "#b": "b"},
           {":s": {"S": "fits"}, ":b": {"S": BIG}}),
    get({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, ProjectionExpression="pk, small"),
    update({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, "REMOVE #a SET #s = :s", {"#a": "a", "#s": "b"},
           {":s": {"S": BIG}}),
    update({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, "SET #s = :s REMOVE #a", {"#a": "a", "#s": "b"},
           {":s": {"S": BIG}}),
    get({"pk": {"S": "BIG"}, "sk": {"S": "A"}}, ProjectionExpression="pk, small, b"),
    put({"pk": {"S": "BIG"}, "sk": {"S": "B"}, "a": {"S": BIG}, "b": {"S": BIG}}),
    # Transactions: one that a failed condition cancels (and rolls back), one that goes through
    ("transact_write_items", {"TransactItems": [
        counter_op(COUNTER, sent="1", delivered="1"),
        counter_op({"pk": {"S": "CTR#ALL#1"}, "sk": {"S": "TOTAL"}}, sent="1"),
        {"ConditionCheck": {"TableName": TABLE, "Key": KEY, "ConditionExpression": STATUS,
                            "ExpressionAttributeNames": {"#c_status": "status"},
                            "ExpressionAttributeValues": {":old_status": {"S": "nope"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]}),
    get(COUNTER),
    get({"pk": {"S": "CTR#ALL#1"}, "sk": {"S": "TOTAL"}}),
    ("transact_write_items", {"TransactItems": [
        counter_op(COUNTER, sent="1", delivered="1"),
        {"Update": {"TableName": TABLE, "Key": KEY, "UpdateExpression": "SET #s0 = :s0 REMOVE #r0",
                    "ConditionExpression": STATUS,
                    "ExpressionAttributeNames": {"#s0": "status", "#r0": "due_pk", "#c_status": "status"},
                    "ExpressionAttributeValues": {":s0": {"S": "delivered"}, ":old_status": {"S": "sent"}}}},
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "SID#1"}, "sk": {"S": "SID"}, "m": {"S": "P#1"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "P#2"}, "sk": {"S": "A"}}}}]}),
    ("transact_write_items", {"TransactItems": [
        counter_op(COUNTER, sent="1"),
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "SID#1"}, "sk": {"S": "SID"}, "m": {"S": "P#3"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}}]}),
    get(COUNTER),
    # Reads: a partition, a page of it, an index, a batch
    ("batch_write_item", {"RequestItems": {TABLE: [
        {"PutRequest": {"Item": {"pk": {"S": "P#1"}, "sk": {"S": f"M#{i:02d}"}, "gpk": {"S": "G#1"},
                                 "gsk": {"S": f"2026-12-0{i % 3 + 1}"}, "n": {"N": str(i)},
                                 "tags": {"SS": [f"t{i}"]}}}} for i in range(12)]}}),
    ("query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p AND begins_with(sk, :m)",
               "ExpressionAttributeValues": {":p": {"S": "P#1"}, ":m": {"S": "M#"}}, "ScanIndexForward": False,
               "Limit": 5}),
    ("query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
               "FilterExpression": "#n >= :low", "ProjectionExpression": "sk, #n",
               "ExpressionAttributeNames": {"#n": "n"},
               "ExpressionAttributeValues": {":p": {"S": "P#1"}, ":a": {"S": "M#02"}, ":b": {"S": "M#09"},
                                             ":low": {"N": "5"}},
               "ExclusiveStartKey": {"pk": {"S": "P#1"}, "sk": {"S": "M#03"}}}),
    ("query", {"TableName": TABLE, "IndexName": "gsi", "KeyConditionExpression": "gpk = :g AND gsk <= :d",
               "ExpressionAttributeValues": {":g": {"S": "G#1"}, ":d": {"S": "2026-12-02"}}}),
    ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [KEY, COUNTER, {"pk": {"S": "P#404"}, "sk": {"S": "A"}}],
                                                 "ConsistentRead": True}}}),
    ("delete_item", {"TableName": TABLE, "Key": KEY, "ConditionExpression": STATUS,
                     "ExpressionAttributeNames": {"#c_status": "status"},
                     "ExpressionAttributeValues": {":old_status": {"S": "queued"}}}),
    ("delete_item", {"TableName": TABLE, "Key": {"pk": {"S": "P#1"}, "sk": {"S": "M#00"}}, "ReturnValues": "ALL_OLD"}),
    ("scan", {"TableName": TABLE}),
]
# What each request gets, without the fast paths: so the comparison is of answers and errors
# that matter, not of two tables that both refused everything.
OUTCOMES = [
    "ok", "ok", "ok", "ConditionalCheckFailedException",
    *["ok"] * 7,
    "ok", "ConditionalCheckFailedException", "ok",
    *["ValidationException"] * 10, *["ok"] * 7,
    "ok", "ValidationException", "ValidationException", "ok", "ok", "ValidationException", "ok", "ValidationException",
    "TransactionCanceledException", "ok", "ok", "ok", "TransactionCanceledException", "ok",
    *["ok"] * 5, "ConditionalCheckFailedException", "ok", "ok",
]


def answers(fast: bool) -> list[Any]:
    """Each request's answer (or error) on a new table, and what the table holds at the end."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        tune_moto()  # as every test account runs
        with mock_aws():
            if fast:
                moto_fast_paths.use_fast_paths(monkeypatch)
            client = boto3.client("dynamodb")
            client.create_table(
                TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gpk", "gsk")],
                GlobalSecondaryIndexes=[{"IndexName": "gsi", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"}, {"AttributeName": "gsk", "KeyType": "RANGE"}]}])
            found = []
            for operation, params in REQUESTS:
                try:
                    answer = getattr(client, operation)(**params)
                except ClientError as error:
                    found.append({"error": error.response["Error"],
                                  "reasons": error.response.get("CancellationReasons"),
                                  "item": error.response.get("Item")})
                else:
                    found.append({k: v for k, v in answer.items() if k != "ResponseMetadata"})
            return found


def test_the_fast_paths_give_moto_s_own_answers_errors_and_items(monkeypatch):
    # Given the same requests, to a table without the fast paths and to one with them
    applied = []
    real_apply = moto_fast_paths._apply
    monkeypatch.setattr(moto_fast_paths, "_apply", lambda update, item: applied.append(1) or real_apply(update, item))
    plain = answers(fast=False)
    assert applied == []
    fast = answers(fast=True)

    # Then every answer, error and item is the same
    assert [a["error"]["Code"] if "error" in a else "ok" for a in plain] == OUTCOMES
    for request, without, with_ in zip(REQUESTS, plain, fast, strict=True):
        assert with_ == without, request
    # ...and the short cut did apply the updates of the store's shape itself
    assert len(applied) == 19
