"""The recount: every counter the reports read, worked out again from the records themselves
(each outbound text as it stands, each inbound text), and compared with the counters the send
and status paths keep.

The two must agree exactly, whatever order receipts came in and however often: a transition
is counted in the same transaction that makes it, once. A difference means a counting bug
(or a write made outside the code). `rebuild` puts the recounted figures in place of the
stored ones; run it while nothing is sending, since a text counted between the recount's read
and its write would be lost from the rebuilt counters.

What is recounted (`is_recounted`): the delivery counters (attempted, sent, delivered,
undelivered, failed, unknown, segments, cost, revenue, carrier fees, replies, opt-outs), their
splits by carrier (`c|…`) and error code (`e|…`), skips (with a campaign's by reason),
cancellations, drips sent, and inbound texts by intent. Counters of levels (pending receipts,
pending drips, waiting texts) and of things no record keeps (leads submitted, lookups made,
deferrals) are neither recounted nor touched.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sendline.adapters.records import Counts, Records
from sendline.adapters.store import COUNTER_SHARDS
from sendline.domain.clock import parse_iso
from sendline.domain.counters import DELIVERY_COUNTERS, error_counter, inbound_deltas, inbound_scopes, reply_deltas
from sendline.domain.status import MessageStatus as S

Key = tuple[str, str]  # (scope, bucket)
_RECOUNTED = DELIVERY_COUNTERS | {"skipped", "cancelled", "drips_sent"}
_RECOUNTED_PREFIXES = ("e|", "c|", "skipped_", "inbound")


def is_recounted(name: str) -> bool:
    return name in _RECOUNTED or name.startswith(_RECOUNTED_PREFIXES)


def _is_message(item: Mapping[str, Any]) -> bool:
    return "message_id" in item and "status" in item and (item.get("sk") == "MSG" or str(item.get("sk", "")).startswith("MSG#"))


def message_deltas(message: Mapping[str, Any]) -> tuple[dict[str, int], datetime | None]:
    """What a text as it stands has added to the counters, and the moment it was counted at."""
    status = S(message["status"])
    deltas: dict[str, int] = {}
    if message.get("attempted_at"):
        deltas["attempted"] = 1
        if message.get("sent_at"):
            deltas.update(sent=1, segments=int(message.get("segments") or 0),
                          cost_micros=int(message.get("cost_micros") or 0),
                          revenue_micros=int(message.get("revenue_micros") or 0),
                          fee_micros=int(message.get("fee_micros") or 0))
            if int(message.get("step") or 0) > 0:
                deltas["drips_sent"] = 1
        if status in (S.DELIVERED, S.UNDELIVERED, S.FAILED, S.UNKNOWN):
            deltas[status.value] = 1
        if status in (S.FAILED, S.UNDELIVERED) and message.get("error_code"):
            deltas[error_counter(str(message["error_code"]))] = 1
        return deltas, parse_iso(message["attempted_at"])
    if status in (S.SKIPPED, S.CANCELLED):
        deltas[status.value] = 1
        if status == S.SKIPPED and message.get("campaign_id") and message.get("skip_reason"):
            deltas[f"skipped_{message['skip_reason']}"] = 1
        return deltas, parse_iso(message["updated_at"])
    return {}, None


def recount(records: Records) -> dict[Key, dict[str, int]]:
    """The recounted counters, by (scope, bucket), counted as the send and status paths count
    them (records.Counts). Two passes over the table: the inbound texts (what each answers),
    then the outbound ones."""
    counts = Counts(records.timezone)
    answers: dict[str, list[dict[str, int]]] = defaultdict(list)
    for item in records.store.scan():
        if item.get("sk") == "INBOUND":
            counts.add(inbound_scopes(item), parse_iso(item["received_at"]), inbound_deltas(item.get("intent") or "none"))
            if item.get("answers_message_id"):
                answers[item["answers_message_id"]].append(
                    reply_deltas(item.get("intent") or "none", item.get("action") or ""))
    for item in records.store.scan():
        if not _is_message(item):
            continue
        deltas, moment = message_deltas(item)
        if moment is not None and deltas:
            counts.add_message(item, moment, deltas)
        for reply in answers.get(item["message_id"], ()):
            if item.get("attempted_at") and reply:
                counts.add_message(item, parse_iso(item["attempted_at"]), reply)
    found = {key: {k: v for k, v in values.items() if v} for key, values in counts.by_key.items()}
    return {key: values for key, values in found.items() if values}


def stored(records: Records) -> dict[Key, dict[str, int]]:
    """The recounted kinds of counter as the table holds them, shards summed."""
    totals: dict[Key, Counter[str]] = defaultdict(Counter)
    for item in _counter_items(records):
        scope = item["pk"][4:].rsplit("#", 1)[0]
        totals[(scope, item["sk"])].update({k: v for k, v in item.items()
                                            if is_recounted(k) and isinstance(v, int) and v})
    return {key: dict(values) for key, values in totals.items() if values}


def _counter_items(records: Records) -> Iterator[dict[str, Any]]:
    return (item for item in records.store.scan() if str(item.get("pk", "")).startswith("CTR#"))


@dataclass(frozen=True)
class Difference:
    scope: str
    bucket: str
    counter: str
    stored: int
    recounted: int


def differences(recounted: Mapping[Key, Mapping[str, int]], kept: Mapping[Key, Mapping[str, int]]) -> list[Difference]:
    found = []
    for key in sorted(set(recounted) | set(kept)):
        a, b = recounted.get(key, {}), kept.get(key, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name, 0) != b.get(name, 0):
                found.append(Difference(key[0], key[1], name, b.get(name, 0), a.get(name, 0)))
    return found


def rebuild(records: Records, recounted: Mapping[Key, Mapping[str, int]]) -> int:
    """Put the recounted figures in the counters: shard 0 holds them, the other shards lose
    their recounted kinds (what is not recounted stays as it is). Returns the items written."""
    written = 0
    for item in _counter_items(records):
        names = [k for k in item if is_recounted(k)]
        if names:
            records.store.update(item["pk"], item["sk"], remove=names)
            written += 1
    for (scope, bucket), values in recounted.items():
        records.store.update(f"CTR#{scope}#0", bucket, set_fields=dict(values))
        written += 1
    return written


__all__ = ["COUNTER_SHARDS", "Difference", "differences", "is_recounted", "rebuild", "recount", "stored"]
