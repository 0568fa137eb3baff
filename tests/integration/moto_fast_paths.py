"""Cheaper moto for long seeded runs: the same answers, less work per DynamoDB request.

A seeded run makes tens of thousands of DynamoDB requests, and moto spends most of its time on
generic machinery rather than on the data: it parses and validates each update expression
through ten tree walks, re-parses each condition, deep-copies the item before every update
(for a stream the table does not have), re-checks an item's total size once per attribute it
sets, and serializes every attribute of every item it returns through the service model, ten
look-ups per attribute. `use_fast_paths` short-cuts exactly those steps for the shapes the
platform's store writes (`SET #s0 = :s0, … REMOVE #r0, … ADD #a0 :a0, …`, plain attribute
values) and leaves everything else, every error case included, to moto itself:

- an update expression of that shape is applied directly (a name it does not know, a key
  attribute, an overlap, an empty string or a type it would have to check fall back to moto),
  action by action as moto's executors apply it, an action that makes the item too large
  refused where LimitedSizeDict would refuse it;
- a condition expression is parsed once per (expression, names, values);
- the item is not deep-copied before an update when the table has no stream;
- an item's size is checked as LimitedSizeDict checks it, without summing the whole item
  again for each attribute set;
- an item's attribute values are returned as they are stored (they are already in the wire
  format) unless one holds binary data or an empty string.

Like devstack.resources.tune_moto, these change the cost and never the result
(tests/integration/test_moto_fast_paths.py sends the same requests with and without them);
unlike it they are undone when the run's monkeypatch is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from moto.core import serialize as moto_serialize
from moto.dynamodb import comparisons, responses
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.ast_nodes import ExpressionAttributeName, ExpressionAttributeValue

MAX_ITEM_SIZE = 405_000  # moto's own limit (LimitedSizeDict)
_NAME = r"#\w+"
_VALUE = r":\w+"
_SIMPLE_UPDATE = re.compile(
    rf"^(?:SET (?P<set>{_NAME} = {_VALUE}(?:, {_NAME} = {_VALUE})*))?\s*"
    rf"(?:REMOVE (?P<remove>{_NAME}(?:, {_NAME})*))?\s*"
    rf"(?:ADD (?P<add>{_NAME} {_VALUE}(?:, {_NAME} {_VALUE})*))?$")


class SimpleUpdate:
    """An update expression of the store's shape: (action, name placeholder, value placeholder)."""

    def __init__(self, expression: str, actions: list[tuple[str, str, str | None]], parse_fully: Any):
        self.expression = expression
        self.actions = actions
        self._parse_fully = parse_fully
        self._full: Any = None

    def full(self) -> Any:
        """moto's own tree, for every case the short cut leaves to moto."""
        if self._full is None:
            self._full = self._parse_fully(self.expression)
        return self._full

    def find_clauses(self, kinds: list[type]) -> list[Any]:
        found: list[Any] = []
        for kind in kinds:
            if kind is ExpressionAttributeName:
                found += [ExpressionAttributeName(name) for _, name, _ in self.actions]
            elif kind is ExpressionAttributeValue:
                found += [ExpressionAttributeValue(value) for _, _, value in self.actions if value]
            else:
                return self.full().find_clauses(kinds)
        return found


class ResolvedUpdate:
    """A SimpleUpdate with its names and values looked up: what the executor applies."""

    def __init__(self, actions: list[tuple[str, str, DynamoType | None]]):
        self.actions = actions

    def normalize(self) -> None:
        """moto's keeps the written order but sorts each run of REMOVE actions; removing
        distinct attributes (checked when resolved) in any order leaves the same item."""


def _parse(expression: str, parse_fully: Any) -> SimpleUpdate | None:
    match = _SIMPLE_UPDATE.match(expression.strip())
    if not match or not any(match.groupdict().values()):
        return None
    actions: list[tuple[str, str, str | None]] = []
    for part in filter(None, (match["set"] or "").split(", ")):
        name, value = part.split(" = ")
        actions.append(("SET", name, value))
    for name in filter(None, (match["remove"] or "").split(", ")):
        actions.append(("REMOVE", name, None))
    for part in filter(None, (match["add"] or "").split(", ")):
        name, value = part.split(" ")
        actions.append(("ADD", name, value))
    return SimpleUpdate(expression, actions, parse_fully)


def _plain(value: Any) -> bool:
    """An attribute value moto stores and returns as it is: no binary, no empty string."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind == "S":
        return isinstance(inner, str) and inner != ""
    if kind == "N":
        return isinstance(inner, str)
    if kind in ("BOOL", "NULL"):
        return isinstance(inner, bool)
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and bool(inner) and all(isinstance(v, str) and v for v in inner)
    if kind == "L":
        return isinstance(inner, list) and all(_plain(v) for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(isinstance(k, str) and _plain(v) for k, v in inner.items())
    return False


def _resolve(update: SimpleUpdate, names: dict[str, str] | None, values: dict[str, Any] | None,
             item: Item, table: Any) -> ResolvedUpdate | None:
    names, values = names or {}, values or {}
    resolved: list[tuple[str, str, DynamoType | None]] = []
    keys = {table.hash_key_attr, table.range_key_attr}
    for action, placeholder, value_name in update.actions:
        name = names.get(placeholder)
        if name is None or name in keys:
            return None
        value = None
        if value_name is not None:
            raw = values.get(value_name)
            if raw is None or not _plain(raw):
                return None
            value = DynamoType(raw)
            if action == "ADD":
                current = item.attrs.get(name)
                if value.type not in ("N", "SS", "NS") or (current is not None and current.type != value.type):
                    return None
        resolved.append((action, name, value))
    if len({name for _, name, _ in resolved}) != len(resolved):
        return None  # moto reports the overlap
    return ResolvedUpdate(resolved)


def _apply(update: ResolvedUpdate, item: Item) -> None:
    """The update, as moto's executors apply it: in order, each assignment refused (with the
    item changed as far as it got) when LimitedSizeDict would refuse it. That check adds the
    new attribute to the item's size as it stands, the value it replaces included; the size is
    kept here as the actions go instead of summed again for each one."""
    attrs = item.attrs
    size = _size(attrs)

    def assign(name: str, value: DynamoType) -> None:
        nonlocal size
        added = bytesize(name) + value.size()
        if size + added > MAX_ITEM_SIZE:
            raise ItemSizeTooLarge
        if name in attrs:
            size -= bytesize(name) + attrs[name].size()
        dict.__setitem__(attrs, name, value)
        size += added

    for action, name, value in update.actions:
        if action == "REMOVE":
            if name in attrs:
                size -= bytesize(name) + attrs[name].size()
                del attrs[name]
        elif action == "SET":
            assert value is not None
            assign(name, value)
        else:
            assert value is not None
            # As moto's AddExecutor: a number is added to 0 when absent; a set starts empty and
            # takes the new members in place, unchecked.
            current = attrs.get(name)
            if value.is_set():
                if current is None:
                    current = DynamoType({value.type: []})
                    assign(name, current)
                before = current.size()
                for member in value.value:
                    if member not in current.value:
                        current.value.append(member)
                size += current.size() - before
            else:
                assign(name, (current or DynamoType({"N": "0"})) + value)


def _size(attrs: dict[str, Any]) -> int:
    """An item's size as LimitedSizeDict sums it."""
    return sum(bytesize(k) + (v.size() if type(v) is DynamoType else bytesize(str(v))) for k, v in attrs.items())


class _CachedCondition:
    """What moto's condition parser gives, from a cache: each caller gets its own lists."""

    def __init__(self, op: Any, names_found: list[str], values_found: list[str]):
        self._op = op
        self.expr_attr_names_found = list(names_found)
        self.expr_attr_values_found = list(values_found)

    def parse(self) -> Any:
        return self._op


def use_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the short cuts (see the module's docstring) until `monkeypatch` is undone."""
    real_parser = dynamodb_models.UpdateExpressionParser
    real_validator = dynamodb_models.UpdateExpressionValidator
    real_executor = dynamodb_models.UpdateExpressionExecutor
    parsed: dict[str, SimpleUpdate | None] = {}

    class UpdateExpressionParser:
        @staticmethod
        def make(expression: str) -> Any:
            if expression not in parsed:
                parsed[expression] = _parse(expression, real_parser.make)
            return parsed[expression] or real_parser.make(expression)

    def UpdateExpressionValidator(ast: Any, *, expression_attribute_names: Any, expression_attribute_values: Any,
                                  item: Item, table: Any) -> Any:
        if isinstance(ast, SimpleUpdate):
            resolved = _resolve(ast, expression_attribute_names, expression_attribute_values, item, table)
            if resolved is not None:
                return _Validated(resolved)
            ast = ast.full()
        return real_validator(ast, expression_attribute_names=expression_attribute_names,
                              expression_attribute_values=expression_attribute_values, item=item, table=table)

    class _Validated:
        def __init__(self, resolved: ResolvedUpdate):
            self.resolved = resolved

        def validate(self) -> ResolvedUpdate:
            return self.resolved

    def UpdateExpressionExecutor(ast: Any, item: Item, names: Any) -> Any:
        if isinstance(ast, ResolvedUpdate):
            return _Execution(ast, item)
        return real_executor(ast, item, names)

    class _Execution:
        def __init__(self, update: ResolvedUpdate, item: Item):
            self.update, self.item = update, item

        def execute(self) -> None:
            _apply(self.update, self.item)

    for module in (dynamodb_models, responses):
        monkeypatch.setattr(module, "UpdateExpressionParser", UpdateExpressionParser)
    monkeypatch.setattr(dynamodb_models, "UpdateExpressionValidator", UpdateExpressionValidator)
    monkeypatch.setattr(dynamodb_models, "UpdateExpressionExecutor", UpdateExpressionExecutor)

    # Conditions: one parse per (expression, names, values).
    real_condition = comparisons.create_condition_expression_parser
    conditions: dict[str, tuple[Any, list[str], list[str]]] = {}

    def create_condition_expression_parser(expression: Any, names: Any, values: Any) -> Any:
        try:
            key = json.dumps([expression, names, values], sort_keys=True)
        except TypeError:  # binary values: parsed every time, as moto does
            return real_condition(expression, names, values)
        if key not in conditions:
            parser = real_condition(expression, names, values)
            op = parser.parse()
            conditions[key] = (op, list(parser.expr_attr_names_found), list(parser.expr_attr_values_found))
        return _CachedCondition(*conditions[key])

    for module in (comparisons, responses, dynamodb_models):
        monkeypatch.setattr(module, "create_condition_expression_parser", create_condition_expression_parser)

    # No copy of the item before an update when no stream wants the old image.
    backend = dynamodb_models.DynamoDBBackend
    real_update_item = backend.update_item

    class ItemsAreNotCopied:
        def __init__(self, underlying: Any):
            self.underlying = underlying

        def __getattr__(self, name: str) -> Any:
            return getattr(self.underlying, name)

        def deepcopy(self, value: Any, memo: Any = None) -> Any:
            if value is None or isinstance(value, Item):
                return value
            return self.underlying.deepcopy(value, memo)

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        if self.get_table(table_name).stream_shard is not None:
            return real_update_item(self, table_name, *args, **kwargs)
        before = dynamodb_models.copy
        dynamodb_models.copy = ItemsAreNotCopied(before)  # type: ignore[assignment]
        try:
            return real_update_item(self, table_name, *args, **kwargs)
        finally:
            dynamodb_models.copy = before  # type: ignore[assignment]

    monkeypatch.setattr(backend, "update_item", update_item)

    # A new item's size checked once, not once per attribute: the sum of every attribute so far
    # is only over the limit when the whole item is.
    def item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        for key, value in attrs.items():
            dict.__setitem__(self.attrs, key, DynamoType(value))
        if _size(self.attrs) > MAX_ITEM_SIZE:
            raise ItemSizeTooLarge

    monkeypatch.setattr(dynamo_type.Item, "__init__", item_init)

    # Attribute values go back as they are stored.
    real_structure = moto_serialize.BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _plain(value):
            serialized[self.get_serialized_name(shape, key)] = value
            return
        real_structure(self, serialized, value, shape, key)

    monkeypatch.setattr(moto_serialize.BaseJSONSerializer, "_serialize_type_structure", serialize_structure)
