"""DynamoDB request units implied by requests, from the documented billing rules (pure functions).

Item size (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
attribute names and values in UTF-8, numbers about one byte per two significant digits plus one,
booleans and nulls one byte, lists and maps three bytes plus one per element.

Writes: a standard write is one write request unit (WRU) per KB of the larger of the item before
and after; a transactional write is two per KB. A conditional write that fails is still billed.
Each global secondary index the write touches is billed separately, as standard writes of the
projected item: one when the item enters, leaves or changes inside the index, two when an index
key attribute changes (the old index entry is deleted and a new one put).

Reads: one read request unit (RRU) per 4 KB for a strongly consistent read, half for an
eventually consistent one; a Query is billed on the summed size of the items it reads, a
BatchGetItem per item; a read that finds nothing still costs the minimum.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

KB = 1024
READ_BLOCK = 4 * KB


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire form, e.g. {"S": "x"}."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(value_size({"B": b}) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of an item in DynamoDB's wire form; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size_before: int, size_after: int, *, transactional: bool) -> int:
    """WRU of one item write on the base table."""
    units = max(1, math.ceil(max(size_before, size_after) / KB))
    return 2 * units if transactional else units


@dataclass(frozen=True)
class IndexKey:
    name: str
    pk: str
    sk: str
    projection: str = "ALL"  # or "KEYS_ONLY": the index holds the table's and its own keys


def index_write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                      indexes: Sequence[IndexKey]) -> dict[str, int]:
    """WRU billed for each index when an item goes from `before` to `after`. A keys-only index
    is written only when the item enters or leaves it or its keys change, and its entries are
    the keys' size."""
    units: dict[str, int] = {}
    for index in indexes:
        was_in = bool(before) and index.pk in before and index.sk in before
        is_in = bool(after) and index.pk in after and index.sk in after
        if not was_in and not is_in:
            continue
        keys_only = index.projection == "KEYS_ONLY"
        if was_in and is_in:
            if before == after:
                continue
            keys_changed = any(before.get(a) != after.get(a) for a in (index.pk, index.sk))
            if keys_only and not keys_changed:
                continue
            size = max(_entry_size(before, index), _entry_size(after, index))
            units[index.name] = (2 if keys_changed else 1) * max(1, math.ceil(size / KB))
        else:
            size = _entry_size(after if is_in else before, index)
            units[index.name] = max(1, math.ceil(size / KB))
    return units


def _entry_size(item: Mapping[str, Any] | None, index: IndexKey) -> int:
    """Bytes of an item's entry in an index: the whole item, or its keys in a keys-only index."""
    if index.projection != "KEYS_ONLY" or not item:
        return item_size(item)
    return item_size({k: v for k, v in item.items() if k in ("pk", "sk", index.pk, index.sk)})


def read_units(sizes: Iterable[int], *, consistent: bool, per_item: bool) -> float:
    """RRU of a read: per item (GetItem, BatchGetItem) or summed (Query); the minimum if none."""
    factor = 1.0 if consistent else 0.5
    sizes = list(sizes)
    if per_item:
        return factor * sum(max(1, math.ceil(s / READ_BLOCK)) for s in sizes)
    return factor * max(1, math.ceil(sum(sizes) / READ_BLOCK))
