"""Counts every AWS API call a boto3 client makes, by phase, service and operation.

`Meter.attach(client, source)` registers botocore event hooks on one client: `before-call`
counts the call, `before-parameter-build` keeps its parameters, and `after-call` works out the
DynamoDB request units it implies (see `bench.capacity`). For writes the item's state before and
after comes from `lookup`, a function reading the table without an API call (moto's backend in
`bench.aws_calls`), so the meter never adds calls of its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.capacity import IndexKey, index_write_units, item_size, read_units, write_units

WireItem = dict[str, Any]
Lookup = Callable[[str, str], WireItem | None]


@dataclass
class Call:
    phase: str
    source: str  # which client made it: "app" (the handlers) or "event_source" (the SQS poller)
    service: str
    operation: str
    transact_items: int = 0
    batch_items: int = 0  # items a BatchWriteItem writes or a BatchGetItem asks for
    wru_table: float = 0.0
    wru_index: dict[str, float] = field(default_factory=dict)
    rru: float = 0.0
    failed: bool = False


@dataclass
class _Write:
    key: tuple[str, str]
    transactional: bool
    before: WireItem | None


class Meter:
    def __init__(self, *, table_key: tuple[str, str], indexes: Sequence[IndexKey], lookup: Lookup | None):
        self.phase = "setup"
        self.calls: list[Call] = []
        self.largest_item = 0
        self._pk, self._sk = table_key
        self._indexes = list(indexes)
        self._lookup = lookup

    # -- hooks --------------------------------------------------------------------------------
    def attach(self, client: Any, source: str) -> None:
        service = client.meta.service_model.service_name

        def before_parameter_build(params: Mapping[str, Any], model: Any, context: dict, **_: Any) -> None:
            context["bench_params"] = params
            if service == "dynamodb":
                context["bench_writes"] = self._pending_writes(model.name, params)

        def before_call(model: Any, context: dict, **_: Any) -> None:
            call = Call(self.phase, source, service, model.name)
            self.calls.append(call)
            context["bench_call"] = call

        def after_call(http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict, **_: Any) -> None:
            call: Call | None = context.get("bench_call")
            if call is None:
                return
            call.failed = http_response.status_code >= 300
            if service == "dynamodb":
                self._dynamodb_units(call, context.get("bench_params") or {}, parsed,
                                     context.get("bench_writes") or [])

        events = client.meta.events
        events.register("before-parameter-build", before_parameter_build, unique_id=f"bench-params-{id(self)}")
        events.register("before-call", before_call, unique_id=f"bench-count-{id(self)}")
        events.register("after-call", after_call, unique_id=f"bench-units-{id(self)}")

    # -- DynamoDB units -------------------------------------------------------------------------
    def _key_of(self, attributes: Mapping[str, Any]) -> tuple[str, str]:
        return attributes[self._pk]["S"], attributes[self._sk]["S"]

    def _pending_writes(self, operation: str, params: Mapping[str, Any]) -> list[_Write]:
        if self._lookup is None:
            return []
        keys: list[tuple[tuple[str, str], bool]] = []
        if operation == "PutItem":
            keys.append((self._key_of(params["Item"]), False))
        elif operation in ("UpdateItem", "DeleteItem"):
            keys.append((self._key_of(params["Key"]), False))
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, op),) = entry.items()
                keys.append((self._key_of(op["Item"] if kind == "Put" else op["Key"]), True))
        elif operation == "BatchWriteItem":
            # Each put or delete is billed as a standard write of its own item.
            for requests in params["RequestItems"].values():
                for request in requests:
                    ((kind, op),) = request.items()
                    keys.append((self._key_of(op["Item"] if kind == "PutRequest" else op["Key"]), False))
        return [_Write(key, transactional, self._lookup(*key)) for key, transactional in keys]

    def _dynamodb_units(self, call: Call, params: Mapping[str, Any], parsed: Mapping[str, Any],
                        writes: list[_Write]) -> None:
        operation = call.operation
        if operation == "TransactWriteItems":
            call.transact_items = len(params.get("TransactItems", []))
        elif operation == "BatchWriteItem":
            call.batch_items = sum(len(requests) for requests in params.get("RequestItems", {}).values())
        elif operation == "BatchGetItem":
            call.batch_items = sum(len(r.get("Keys", [])) for r in params.get("RequestItems", {}).values())
        if writes:
            for write in writes:
                after = self._lookup(*write.key) if self._lookup else None
                if call.failed:
                    after = write.before
                size_before, size_after = item_size(write.before), item_size(after)
                self.largest_item = max(self.largest_item, size_before, size_after)
                call.wru_table += write_units(size_before, size_after, transactional=write.transactional)
                for index, units in index_write_units(write.before, after, self._indexes).items():
                    call.wru_index[index] = call.wru_index.get(index, 0) + units
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            call.wru_table += 1
        elif operation == "BatchWriteItem":
            call.wru_table += call.batch_items
        elif operation == "TransactWriteItems":
            call.wru_table += 2 * call.transact_items
        if operation == "GetItem":
            call.rru = read_units([item_size(parsed.get("Item"))], consistent=bool(params.get("ConsistentRead")),
                                  per_item=True)
        elif operation == "Query":
            call.rru = read_units([item_size(i) for i in parsed.get("Items", [])],
                                  consistent=bool(params.get("ConsistentRead")), per_item=False)
        elif operation == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                found = [item_size(i) for i in parsed.get("Responses", {}).get(table, [])]
                unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
                missing = max(0, len(request.get("Keys", [])) - len(found) - unprocessed)
                call.rru += read_units(found + [0] * missing, consistent=bool(request.get("ConsistentRead")),
                                       per_item=True)


# -- aggregation (pure) -------------------------------------------------------------------------
def by_operation(calls: Sequence[Call], phases: Sequence[str]) -> dict[str, dict[str, int]]:
    """{"dynamodb.GetItem (app)": {"total": n, phase: n, ...}} for the given phases."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: Counter())  # type: ignore[arg-type]
    for call in calls:
        if call.phase not in phases:
            continue
        label = f"{call.service}.{call.operation}"
        if call.source != "app":
            label += f" ({call.source.replace('_', ' ')})"
        table[label][call.phase] += 1
        table[label]["total"] += 1
    return {k: dict(v) for k, v in sorted(table.items(), key=lambda kv: (-kv[1]["total"], kv[0]))}


def phase_totals(calls: Sequence[Call], phase: str) -> dict[str, float]:
    selected = [c for c in calls if c.phase == phase]
    dynamodb = [c for c in selected if c.service == "dynamodb"]
    transactions = [c for c in dynamodb if c.operation == "TransactWriteItems"]
    return {
        "dynamodb_calls": len(dynamodb),
        "sqs_calls_app": sum(1 for c in selected if c.service == "sqs" and c.source == "app"),
        "sqs_calls_event_source": sum(1 for c in selected if c.service == "sqs" and c.source == "event_source"),
        "transactions": len(transactions),
        "transact_items": sum(c.transact_items for c in transactions),
        "wru_transact": sum(c.wru_table for c in transactions),
        "wru_table": sum(c.wru_table for c in dynamodb),
        "wru_index": sum(sum(c.wru_index.values()) for c in dynamodb),
        "rru": sum(c.rru for c in dynamodb),
        "failed_calls": sum(1 for c in selected if c.failed),
    }


def transaction_sizes(calls: Sequence[Call]) -> dict[str, dict[int, int]]:
    """How many TransactWriteItems had how many items, by phase."""
    sizes: dict[str, Counter[int]] = defaultdict(Counter)
    for call in calls:
        if call.operation == "TransactWriteItems":
            sizes[call.phase][call.transact_items] += 1
    return {phase: dict(sorted(counter.items())) for phase, counter in sizes.items()}
