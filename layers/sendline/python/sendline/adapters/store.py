"""DynamoDB mechanics: (de)serialisation, conditional writes, transactions, sharded counters.

It knows nothing of leads or flows (that is `records.py`, the one module that knows the layout);
it translates DynamoDB's error codes into domain errors, once.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from sendline.errors import ConditionFailed, StoreThrottled

COUNTER_SHARDS = 8

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_python(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    if isinstance(value, set):
        return {_to_python(v) for v in value}
    return value


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def _condition_names(condition: str) -> dict[str, str]:
    """Conditions name attributes through aliases of their own: `#c_status` stands for `status`."""
    return {token: token[3:] for token in re.findall(r"#c_\w+", condition)}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _to_python(_deserializer.deserialize(v)) for k, v in item.items()}


@dataclass(frozen=True)
class Index:
    """A global secondary index and the names of its key attributes."""

    name: str
    pk: str
    sk: str


@dataclass(frozen=True)
class CounterUpdate:
    """Add each bucket's deltas to the counters of every scope (e.g. TOTAL, D#day, H#hour)."""

    scopes: tuple[str, ...]
    deltas_by_bucket: Mapping[str, Mapping[str, int]]


class Store:
    def __init__(self, client: Any, table_name: str):
        self._db = client
        self.table = table_name

    # -- error translation ------------------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._db, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(str(exc)) from exc
            if code in {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}:
                raise StoreThrottled(code) from exc
            if code == "TransactionCanceledException":
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    error = ConditionFailed(str(exc))
                    error.reasons = reasons  # type: ignore[attr-defined]
                    raise error from exc
                if any(r in {"ThrottlingError", "ProvisionedThroughputExceeded"} for r in reasons):
                    raise StoreThrottled(code) from exc
            raise

    # -- basic items ------------------------------------------------------------------------
    def get(self, pk: str, sk: str, consistent: bool = True) -> dict[str, Any] | None:
        response = self._call(
            "get_item", TableName=self.table, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=consistent
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def put(self, item: Mapping[str, Any], condition: str | None = None) -> None:
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        self._call("put_item", **kwargs)

    def delete(self, pk: str, sk: str, must_exist: bool = False) -> None:
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": serialize({"pk": pk, "sk": sk})}
        if must_exist:
            kwargs["ConditionExpression"] = "attribute_exists(pk)"
        self._call("delete_item", **kwargs)

    def batch_put(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Write items 25 at a time (unconditional, last write wins), retrying unprocessed ones
        with a short backoff; returns how many were written."""
        written = 0
        chunk: list[dict[str, Any]] = []
        for item in items:
            chunk.append({"PutRequest": {"Item": serialize(item)}})
            if len(chunk) == 25:
                written += self._write_chunk(chunk)
                chunk = []
        if chunk:
            written += self._write_chunk(chunk)
        return written

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> int:
        request = {self.table: chunk}
        for attempt in range(8):
            response = self._call("batch_write_item", RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return len(chunk)
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
        raise StoreThrottled("batch_write_item left items unprocessed")

    def scan(self, *, consistent: bool = True) -> Iterator[dict[str, Any]]:
        """Every item of the table, page by page. For jobs only (the recount): no request path
        scans."""
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": consistent}
        while True:
            response = self._call("scan", **kwargs)
            for item in response.get("Items", []):
                yield deserialize(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def batch_get(self, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """Many items by key, 100 at a time, retrying unprocessed keys."""
        unique = list(dict.fromkeys(keys))
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), 100):
            request = {self.table: {"Keys": [serialize({"pk": pk, "sk": sk}) for pk, sk in unique[start:start + 100]]}}
            while request:
                response = self._call("batch_get_item", RequestItems=request)
                found.extend(deserialize(i) for i in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
        return found

    def query(self, pk_value: str, *, index: Index | None = None, sk_prefix: str | None = None,
              sk_upto: str | None = None, sk_after: str | None = None, newest_first: bool = False,
              limit: int | None = None, consistent: bool = False) -> Iterator[dict[str, Any]]:
        pk_name, sk_name = ("pk", "sk") if index is None else (index.pk, index.sk)
        condition = "#pk = :pk"
        values: dict[str, Any] = {":pk": pk_value}
        names = {"#pk": pk_name}
        if sk_prefix is not None:
            condition += " AND begins_with(#sk, :sk)"
            values[":sk"] = sk_prefix
            names["#sk"] = sk_name
        elif sk_upto is not None:
            condition += " AND #sk <= :sk"
            values[":sk"] = sk_upto
            names["#sk"] = sk_name
        elif sk_after is not None:
            condition += " AND #sk > :sk"
            values[":sk"] = sk_after
            names["#sk"] = sk_name
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": serialize(values),
            "ExpressionAttributeNames": names,
            "ScanIndexForward": not newest_first,
        }
        if index:
            kwargs["IndexName"] = index.name
        elif consistent:
            kwargs["ConsistentRead"] = True
        returned = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = max(1, limit - returned)
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                yield deserialize(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def update(self, pk: str, sk: str, *, set_fields: Mapping[str, Any] | None = None,
               remove: Iterable[str] = (), add: Mapping[str, int] | None = None,
               condition: str | None = None, condition_values: Mapping[str, Any] | None = None,
               return_new: bool = False) -> dict[str, Any] | None:
        op = self.update_op(pk, sk, set_fields=set_fields, remove=remove, add=add, condition=condition,
                            condition_values=condition_values)
        kwargs = dict(op["Update"])
        if return_new:
            kwargs["ReturnValues"] = "ALL_NEW"
        response = self._call("update_item", **kwargs)
        return deserialize(response["Attributes"]) if return_new else None

    def update_one(self, op: dict[str, Any]) -> None:
        """Run one `update_op` on its own (conditional writes raise ConditionFailed)."""
        self._call("update_item", **op["Update"])

    # -- transactions -----------------------------------------------------------------------
    def update_op(self, pk: str, sk: str, *, set_fields: Mapping[str, Any] | None = None,
                  remove: Iterable[str] = (), add: Mapping[str, int] | None = None,
                  condition: str | None = None, condition_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: list[str] = []
        sets = []
        for i, (field, value) in enumerate((set_fields or {}).items()):
            if value is None:
                remove = [*remove, field]
                continue
            names[f"#s{i}"] = field
            values[f":s{i}"] = value
            sets.append(f"#s{i} = :s{i}")
        if sets:
            clauses.append("SET " + ", ".join(sets))
        removes = []
        for i, field in enumerate(remove):
            names[f"#r{i}"] = field
            removes.append(f"#r{i}")
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        adds = []
        for i, (field, amount) in enumerate((add or {}).items()):
            names[f"#a{i}"] = field
            values[f":a{i}"] = amount
            adds.append(f"#a{i} :a{i}")
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": " ".join(clauses),
        }
        if condition:
            names.update(_condition_names(condition))
            update["ConditionExpression"] = condition
            values.update(condition_values or {})
        if names:
            update["ExpressionAttributeNames"] = names
        if values:
            update["ExpressionAttributeValues"] = serialize(values)
        return {"Update": update}

    def put_op(self, item: Mapping[str, Any], condition: str | None = None,
               values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if condition:
            put["ConditionExpression"] = condition
            names = _condition_names(condition)
            if names:
                put["ExpressionAttributeNames"] = names
            if values:
                put["ExpressionAttributeValues"] = serialize(values)
        return {"Put": put}

    def transact(self, ops: list[dict[str, Any]]) -> None:
        if not ops:
            return
        self._call("transact_write_items", TransactItems=ops)

    # -- counters ---------------------------------------------------------------------------
    def counter_ops(self, update: CounterUpdate, shard: int | None = None) -> list[dict[str, Any]]:
        chosen = random.randrange(COUNTER_SHARDS) if shard is None else shard
        ops = []
        for bucket, deltas in update.deltas_by_bucket.items():
            changes = {k: v for k, v in deltas.items() if v}
            if changes:
                ops += [self.update_op(f"CTR#{scope}#{chosen}", bucket, add=changes) for scope in update.scopes]
        return ops

    def read_counters(self, scope_buckets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, int]]:
        """Sum the shards of each (scope, bucket); missing counters read as zero."""
        wanted = list(dict.fromkeys(scope_buckets))
        keys = [(f"CTR#{scope}#{s}", bucket) for scope, bucket in wanted for s in range(COUNTER_SHARDS)]
        totals: dict[tuple[str, str], dict[str, int]] = {sb: {} for sb in wanted}
        for item in self.batch_get(keys):
            scope = item["pk"][4:].rsplit("#", 1)[0]
            sums = totals[(scope, item["sk"])]
            for field, value in item.items():
                if field not in ("pk", "sk") and isinstance(value, int):
                    sums[field] = sums.get(field, 0) + value
        return totals
