"""Sendline's records in DynamoDB: the one module that knows the table layout.

Items (pk / sk), and the access patterns they serve, are listed in docs/data-model.md:
  FLOW#{flow_id}           / META            a lead flow;  gsi1 FLOWS / {created_at}#{flow_id}
  LEAD#{lead_id}           / META            a lead;       gsi1 FLOWLEAD#{flow_id} / {created_at}#{lead_id}
  PHONE#{phone}            / LEAD#{created_at}#{lead_id}   the phone's leads, with how consent was given
  PHONE#{phone}            / EVENT#{at}#{sid}              the phone's opt-outs and opt-ins, as they came
  LEAD#{lead_id}           / MSG#{step:02}   an outbound message; gsi1 FLOWMSG#{flow_id} / {updated_at}#..;
                                             due (sparse, while scheduled) DUE#{shard} / {due_at}#..;
                                             log (every message) LOG#{created hour} / {created_at}#..
  SID#{provider_sid}       / SID             provider sid -> message
  SID#{provider_sid}       / EARLY           receipts that arrived before the send was recorded
  INBOUND#{provider_sid}   / INBOUND         an inbound text; gsi1 INBOX#{day} / {received_at}#{sid}
  DNC#{phone}              / DNC             do-not-contact entry; gsi1 DNCS / {added_at}#{phone}
  DNCSTRIKE#{phone}        / DNCSTRIKE       delivery failures counted towards auto-DNC
  APIKEY#{sha256}          / APIKEY          integrator key, stored hashed (revoked: revoked_at); gsi1 APIKEYS / {created_at}#{key_id}
  RATE#{key_id}#{minute}   / RATE            fixed-window request counter (TTL)
  DEDUPE#{flow_id}#{phone} / DEDUPE          24 h duplicate-submission guard (TTL)
  IDEM#{key_id}#{key}      / IDEM            Idempotency-Key guard (TTL)
  CTR#{scope}#{shard}      / {bucket}        sharded counters (TOTAL, D#{day}, H#{hour})
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sendline.adapters.store import CounterUpdate, Index, Store
from sendline.domain.clock import iso, parse_iso
from sendline.domain.counters import (
    LEVEL_COUNTERS,
    carrier_name,
    dimension_scopes,
    inbound_deltas,
    inbound_scopes,
    is_delivery_counter,
    reply_deltas,
    scopes_for,
    source_scopes,
    time_buckets,
    transition_deltas,
    with_carrier_split,
)
from sendline.domain.status import MessageStatus
from sendline.errors import ConditionFailed

GSI1 = Index("gsi1", "gsi1pk", "gsi1sk")  # listings
# A paced send waits for its number by at most this share of its campaign's spacing.
GIVE_WAY_SHARE = 4
DUE = Index("due", "due_pk", "due_sk")  # sparse: messages waiting for their send time
LOG = Index("log", "log_pk", "log_sk")  # every message by creation hour, keys only: the message log
DUE_SHARDS = 8
DEDUPE_WINDOW = timedelta(hours=24)
# A reply is counted against the text it answers if that text went within this long before.
LAST_TEXT_TTL_S = 30 * 86_400
STATUS_CONDITION = "#c_status = :old_status"
DNC_LISTING = "DNCS"  # gsi1 partition of the DNC list
DNC_BATCH = 100  # numbers added in one transaction (DynamoDB allows 100 items)
_DNC_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#\+\d{6,15}")


class LeadExists(Exception):
    """The same submission was accepted before; `lead_id` is the original lead.

    `request_hash` is the original request's fingerprint when an Idempotency-Key matched.
    """

    def __init__(self, lead_id: str, request_hash: str | None = None):
        super().__init__(lead_id)
        self.lead_id = lead_id
        self.request_hash = request_hash


def _shard_of(text: str, shards: int) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) % shards


def message_id(owner_id: str, part: int | str) -> str:
    """A message's public id: its owner (lead, campaign, quick send) and its place there.

    `ld_…-2` is a lead's second drip; `cm_…-{contact}` a campaign's text to one contact;
    `qs_…-0` a quick send. The id alone locates the item (see `message_key`)."""
    return f"{owner_id}-{part}"


def message_key(msg_id: str) -> tuple[str, str] | None:
    owner, _, part = msg_id.rpartition("-")
    if not owner or not _plausible_id(owner) or not part or len(part) > 40:
        return None
    if owner.startswith("ld_") and part.isdigit():
        return f"LEAD#{owner}", f"MSG#{int(part):02d}"
    if owner.startswith("cm_"):
        # One partition per campaign text: a campaign at 100+ texts/s writes to many keys.
        return f"CMSG#{owner}#{part}", "MSG"
    if owner.startswith("qs_") and part == "0":
        return f"QUICK#{owner}", "MSG"
    return None


def _due_fields(message: Mapping[str, Any], due_at: str) -> dict[str, str]:
    msg_id = message["message_id"]
    if message.get("campaign_id"):
        # A campaign's waiting texts stay in its own partition: its dispatcher paces them.
        return {"due_pk": f"CDUE#{message['campaign_id']}", "due_sk": f"{due_at}#{msg_id}"}
    return {"due_pk": f"DUE#{_shard_of(msg_id, DUE_SHARDS)}", "due_sk": f"{due_at}#{msg_id}"}


def _log_fields(msg_id: str, created_at: str) -> dict[str, str]:
    """A message's place in the message log: the UTC hour it was created (`created_at` is ISO
    text in UTC), then its creation time. Written once and never changed, so a status change
    never moves a message in the log and a page's cursor stays valid."""
    return {"log_pk": f"LOG#{created_at[:13]}", "log_sk": f"{created_at}#{msg_id}"}


def _listing_pk(message: Mapping[str, Any]) -> str:
    if message.get("campaign_id"):
        return f"CAMPMSG#{message['campaign_id']}"
    if message.get("flow_id"):
        return f"FLOWMSG#{message['flow_id']}"
    return "QUICKSENDS"


MAX_ID_LENGTH = 100  # ids we issue are 29 characters; anything longer cannot be one of ours


def _plausible_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH


def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    hidden = {"pk", "sk", "gsi1pk", "gsi1sk", "due_pk", "due_sk", "log_pk", "log_sk", "expires_at", "claim_id"}
    return {k: v for k, v in item.items() if k not in hidden}


def _campaign_deltas(old: MessageStatus, new: MessageStatus, fields: Mapping[str, Any]) -> dict[str, int]:
    """What a campaign's own progress counts: texts waiting (paused, outside the send window)
    and skips by reason."""
    deltas: dict[str, int] = {}
    if new == MessageStatus.SCHEDULED and old != MessageStatus.SCHEDULED:
        deltas["waiting"] = 1
    elif old == MessageStatus.SCHEDULED and new != MessageStatus.SCHEDULED:
        deltas["waiting"] = -1
    if new == MessageStatus.SKIPPED and fields.get("skip_reason"):
        deltas[f"skipped_{fields['skip_reason']}"] = 1
    return deltas


class Counts:
    """Counter changes gathered for one write: each (scope, bucket) once, whatever added to it,
    since a transaction may touch an item only once."""

    def __init__(self, timezone: str):
        self.timezone = timezone
        self.by_key: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, scopes: Iterable[str], at: datetime, deltas: Mapping[str, int]) -> None:
        """Flows (sent, delivered...) go to the total, day and hour buckets; levels (pending
        receipts, pending drips) only to the total, where a level means something."""
        if not deltas:
            return
        total, *periods = time_buckets(at, self.timezone)
        flows = {k: v for k, v in deltas.items() if k not in LEVEL_COUNTERS}
        for scope in scopes:
            for bucket, changes in ((total, deltas), *((p, flows) for p in periods)):
                kept = self.by_key.setdefault((scope, bucket), {})
                for name, value in changes.items():
                    kept[name] = kept.get(name, 0) + value

    def add_message(self, message: Mapping[str, Any], at: datetime, deltas: Mapping[str, int]) -> None:
        """A text's counter changes: every delta in its source scopes (the account, its campaign
        or flow); once it was attempted, the delivery counters also in its brand, number,
        carrier and creative, and split by carrier everywhere but in the carrier's own scope."""
        if not message.get("attempted_at"):
            self.add(source_scopes(message), at, deltas)
            return
        carrier = carrier_name(message.get("carrier"))
        delivery = {k: v for k, v in deltas.items() if is_delivery_counter(k)}
        carrier_scope = f"CARRIER#{carrier}"
        self.add(source_scopes(message), at, with_carrier_split(dict(deltas), carrier))
        self.add([s for s in dimension_scopes(message) if s != carrier_scope], at, with_carrier_split(delivery, carrier))
        self.add([carrier_scope], at, delivery)

    def ops(self, store: Store) -> list[dict[str, Any]]:
        by_bucket: dict[str, dict[str, dict[str, int]]] = {}
        for (scope, bucket), changes in self.by_key.items():
            by_bucket.setdefault(scope, {})[bucket] = changes
        ops: list[dict[str, Any]] = []
        for scope, buckets in by_bucket.items():
            ops += store.counter_ops(CounterUpdate((scope,), buckets))
        return ops


class Records:
    def __init__(self, store: Store, timezone: str = "UTC"):
        self.store = store
        self.timezone = timezone
        self._pace_hints: dict[str, int] = {}  # key -> the next free send moment last seen
        self._remembered: dict[str, tuple[float, Any]] = {}

    def remembered(self, key: str, max_age_s: float, load: Callable[[], Any]) -> Any:
        """`load()`'s answer, kept for `max_age_s` in this execution environment: for what the
        send path reads for every text but changes seldom (sending numbers, account settings)."""
        found = self._remembered.get(key)
        if found and time.monotonic() - found[0] < max_age_s:
            return found[1]
        value = load()
        self._remembered[key] = (time.monotonic(), value)
        return value

    # -- integrator keys and rate windows ---------------------------------------------------
    def put_api_key(self, key_hash: str, key_id: str, name: str, hint: str, now: datetime) -> None:
        """Store a key, or store it again (same id); a revoked key is left as it is, revoked."""
        try:
            self.store.put({"pk": f"APIKEY#{key_hash}", "sk": "APIKEY", "key_id": key_id, "name": name,
                            "hint": hint, "created_at": iso(now), "gsi1pk": "APIKEYS",
                            "gsi1sk": f"{iso(now)}#{key_id}"}, condition="attribute_not_exists(revoked_at)")
        except ConditionFailed:
            pass

    def find_api_key(self, key_id: str) -> tuple[str, dict[str, Any]] | None:
        """A key's hash and record by its id, from the keys' listing (Query gsi1 `APIKEYS`: an
        account's keys, a few hundred at most; operators' revocations only, never a request of
        an integrator's)."""
        for item in self.store.query("APIKEYS", index=GSI1):
            if item.get("key_id") == key_id:
                return item["pk"].removeprefix("APIKEY#"), _public(item)
        return None

    def revoke_api_key(self, key_hash: str, now: datetime) -> dict[str, Any]:
        """Mark the key revoked, keeping the record; a key revoked already keeps its first
        `revoked_at`. Returns the record."""
        try:
            item = self.store.update(f"APIKEY#{key_hash}", "APIKEY", set_fields={"revoked_at": iso(now)},
                                     condition="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                                     return_new=True)
        except ConditionFailed:
            item = self.store.get(f"APIKEY#{key_hash}", "APIKEY")
            if item is None:
                raise KeyError(key_hash) from None
        return _public(item)  # type: ignore[arg-type]

    def list_api_keys(self) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query("APIKEYS", index=GSI1, newest_first=True, limit=500)]

    def get_api_key(self, key_hash: str) -> dict[str, Any] | None:
        return self.store.get(f"APIKEY#{key_hash}", "APIKEY", consistent=False)

    def count_request(self, key_id: str, window_start: int, expires_at: int) -> int:
        item = self.store.update(f"RATE#{key_id}#{window_start}", "RATE", add={"requests": 1},
                                 set_fields={"expires_at": expires_at}, return_new=True)
        return int(item["requests"]) if item else 1

    # -- flows -------------------------------------------------------------------------------
    def put_flow(self, flow: Mapping[str, Any]) -> None:
        self.store.put({"pk": f"FLOW#{flow['flow_id']}", "sk": "META", "gsi1pk": "FLOWS",
                        "gsi1sk": f"{flow['created_at']}#{flow['flow_id']}", **flow},
                       condition="attribute_not_exists(pk)")

    def get_flow(self, flow_id: str) -> dict[str, Any] | None:
        if not _plausible_id(flow_id):
            return None
        item = self.store.get(f"FLOW#{flow_id}", "META", consistent=False)
        return _public(item) if item else None

    def list_flows(self, limit: int = 200) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query("FLOWS", index=GSI1, newest_first=True, limit=limit)]

    def set_flow_status(self, flow_id: str, status: str, now: datetime) -> dict[str, Any]:
        if not _plausible_id(flow_id):
            raise KeyError(flow_id)
        try:
            item = self.store.update(f"FLOW#{flow_id}", "META", set_fields={"status": status, "updated_at": iso(now)},
                                     condition="attribute_exists(pk)", return_new=True)
        except ConditionFailed:
            raise KeyError(flow_id) from None
        return _public(item or {})

    def flow_activity(self, flow_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query(f"FLOWMSG#{flow_id}", index=GSI1, newest_first=True,
                                                     limit=limit)]

    def counters(self, scope_buckets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, int]]:
        return self.store.read_counters(scope_buckets)

    # -- leads and their messages -----------------------------------------------------------
    def create_lead(self, lead: Mapping[str, Any], messages: list[Mapping[str, Any]], now: datetime,
                    idempotency_key: str | None = None, request_hash: str | None = None) -> None:
        """Store a lead with all its messages at once, unless the same submission was seen.

        Raises LeadExists with the original lead id when the flow+phone pair was submitted in
        the last 24 hours, or the integrator's Idempotency-Key was used before.
        """
        lead_id, flow_id, phone = lead["lead_id"], lead["flow_id"], lead["phone"]
        created = iso(now)
        guard_values = {":now": int(now.timestamp())}
        guard = "attribute_not_exists(pk) OR #c_expires_at < :now"
        expires = int((now + DEDUPE_WINDOW).timestamp())
        ops = [
            self.store.put_op({"pk": f"DEDUPE#{flow_id}#{phone}", "sk": "DEDUPE", "lead_id": lead_id,
                               "expires_at": expires}, guard, guard_values),
            self.store.put_op({"pk": f"LEAD#{lead_id}", "sk": "META", "gsi1pk": f"FLOWLEAD#{flow_id}",
                               "gsi1sk": f"{created}#{lead_id}", **lead}),
        ]
        if idempotency_key:
            ops.insert(0, self.store.put_op({"pk": f"IDEM#{lead['api_key_id']}#{idempotency_key}", "sk": "IDEM",
                                             "lead_id": lead_id, "request_hash": request_hash,
                                             "expires_at": expires}, guard, guard_values))
        for message in messages:
            ops.append(self.store.put_op(self.message_item(message, created)))
        ops.append(self.store.put_op({
            "pk": f"PHONE#{phone}", "sk": f"LEAD#{created}#{lead_id}", "lead_id": lead_id, "flow_id": flow_id,
            "from_number": messages[0]["from_number"] if messages else None, "created_at": created,
            "consent": lead.get("consent")}))
        drips = sum(1 for m in messages if m["step"] > 0)
        ops += self._counter_ops(scopes_for(flow_id), now, {"leads": 1, "pending_drips": drips})
        try:
            self.store.transact(ops)
        except ConditionFailed:
            raise self._original_lead(lead, idempotency_key, now) from None

    def _original_lead(self, lead: Mapping[str, Any], idempotency_key: str | None, now: datetime) -> LeadExists:
        guards = [(f"DEDUPE#{lead['flow_id']}#{lead['phone']}", "DEDUPE")]
        if idempotency_key:
            guards.insert(0, (f"IDEM#{lead['api_key_id']}#{idempotency_key}", "IDEM"))
        for pk, sk in guards:
            item = self.store.get(pk, sk)
            if item and item.get("expires_at", 0) >= int(now.timestamp()):
                return LeadExists(item["lead_id"], item.get("request_hash"))
        raise ConditionFailed("lead guard changed during the write")

    def message_item(self, message: Mapping[str, Any], updated_at: str) -> dict[str, Any]:
        """The stored form of a new message (`message_id` set; a lead's is derived here)."""
        msg_id = message.get("message_id") or message_id(message["lead_id"], message["step"])
        key = message_key(msg_id)
        assert key, msg_id
        message = {**message, "message_id": msg_id}
        item = {"pk": key[0], "sk": key[1], "gsi1pk": _listing_pk(message), "gsi1sk": f"{updated_at}#{msg_id}",
                "updated_at": updated_at, **message,
                **_log_fields(msg_id, message.get("created_at") or updated_at)}
        if message["status"] == MessageStatus.SCHEDULED or (message.get("campaign_id") and message.get("due_at")):
            # A campaign's queued text stays findable until a worker claims it: if SQS never
            # got it, the dispatcher queues it again once its due time has passed.
            item.update(_due_fields(message, message["due_at"]))
        return item

    def get_lead(self, lead_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        lead, messages = None, []
        if not _plausible_id(lead_id):
            return lead, messages
        for item in self.store.query(f"LEAD#{lead_id}", consistent=True):
            if item["sk"] == "META":
                lead = _public(item)
            elif item["sk"].startswith("MSG#"):
                messages.append(item)
        return lead, messages

    def get_message(self, msg_id: str) -> dict[str, Any] | None:
        key = message_key(msg_id)
        return self.store.get(*key) if key else None

    # -- the message log: every message by the UTC hour it was created (index `log`) --------
    @staticmethod
    def log_position(moment: datetime) -> str:
        """Where the log reads on from to list messages created before `moment`: every log sort
        key below it is an earlier message's."""
        return iso(moment)

    def message_log_keys(self, hour: datetime, *, below: str | None, limit: int) -> list[tuple[str, tuple[str, str]]]:
        """The messages created in one UTC hour, newest first, as (log sort key, table key);
        `below` (a log sort key already read, or a `log_position`) continues under it. The index
        holds keys only: the messages are read with `messages_at`."""
        items = self.store.query(f"LOG#{hour:%Y-%m-%dT%H}", index=LOG, newest_first=True,
                                 limit=limit + 1 if below else limit, **({"sk_upto": below} if below else {}))
        return [(i["log_sk"], (i["pk"], i["sk"])) for i in items if i["log_sk"] != below][:limit]

    def messages_at(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Messages by table key, as they are now (BatchGetItem)."""
        return {(i["pk"], i["sk"]): i for i in self.store.batch_get(keys)}

    def park_for_paused_flow(self, message: Mapping[str, Any]) -> None:
        """Move a due message of a paused flow out of the due shards, so a long pause never
        buries other flows' due messages; `release_paused` puts them back on resume."""
        try:
            self.store.update(message["pk"], message["sk"], set_fields={"due_pk": f"PAUSED#{message['flow_id']}"},
                              condition=STATUS_CONDITION, condition_values={":old_status": MessageStatus.SCHEDULED.value})
        except ConditionFailed:
            pass  # a worker took it meanwhile

    def release_paused(self, flow_id: str) -> int:
        released = 0
        for item in self.store.query(f"PAUSED#{flow_id}", index=DUE):
            shard = _due_fields(item, item["due_at"])["due_pk"]
            try:
                self.store.update(item["pk"], item["sk"], set_fields={"due_pk": shard},
                                  condition=STATUS_CONDITION,
                                  condition_values={":old_status": MessageStatus.SCHEDULED.value})
                released += 1
            except ConditionFailed:
                continue
        return released

    def due_messages(self, now: datetime, limit_per_shard: int = 500) -> list[dict[str, Any]]:
        upto = iso(now) + "~"  # '~' sorts after every "#lead#step" suffix of the same instant
        found = []
        for shard in range(DUE_SHARDS):
            found.extend(self.store.query(f"DUE#{shard}", index=DUE, sk_upto=upto, limit=limit_per_shard))
        return found

    # -- status changes, each counted in the same transaction -----------------------------
    def transition(self, message: Mapping[str, Any], new: MessageStatus, now: datetime, *,
                   fields: Mapping[str, Any] | None = None, claim_id: str | None = None,
                   due_at: str | None = None, park_for_flow: str | None = None, extra_ops: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Move `message` from the status it was read in to `new`, or raise ConditionFailed.

        The write is conditional on the status (and the worker's claim, when given) being what
        was read, so two racing writers cannot both apply a change, and the counters change in
        the same transaction: a transition is counted exactly once.
        """
        old = MessageStatus(message["status"])
        stamp = iso(now)
        step = int(message.get("step") or 0)
        updates: dict[str, Any] = {"status": new.value, "updated_at": stamp,
                                   "gsi1sk": f"{stamp}#{message['message_id']}", **(fields or {})}
        attempted_before = message.get("attempted_at")
        if old == MessageStatus.SENDING and new in (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.UNKNOWN):
            updates["attempted_at"] = stamp
        remove: list[str] = []
        if due_at is not None:
            updates.update(_due_fields(message, due_at), due_at=due_at)
            if park_for_flow:
                updates["due_pk"] = f"PAUSED#{park_for_flow}"
        elif old == MessageStatus.SCHEDULED or message.get("due_pk"):
            remove += ["due_pk", "due_sk"]
        condition = STATUS_CONDITION
        values: dict[str, Any] = {":old_status": old.value}
        if claim_id is not None:
            condition += " AND #c_claim_id = :claim"
            values[":claim"] = claim_id
        pk, sk = message_key(message["message_id"]) or (message["pk"], message["sk"])
        ops = [self.store.update_op(pk, sk, set_fields=updates, remove=remove,
                                    condition=condition, condition_values=values)]
        deltas = transition_deltas(old, new, step=step, segments=int(updates.get("segments") or 0),
                                   cost_micros=int(updates.get("cost_micros") or 0),
                                   revenue_micros=int(updates.get("revenue_micros") or 0),
                                   fee_micros=int(updates.get("fee_micros") or 0),
                                   error_code=str(updates.get("error_code") or "") or None)
        if due_at is not None and step > 0 and old != MessageStatus.SCHEDULED:
            deltas["pending_drips"] = deltas.get("pending_drips", 0) + 1
        if message.get("campaign_id"):
            deltas.update(_campaign_deltas(old, new, fields or {}))
        # A receipt counts in the hour its text was attempted, not the hour it came.
        counted_at = parse_iso(attempted_before) if attempted_before else now
        ops += self.message_counter_ops({**message, **updates}, counted_at, deltas)
        ops += list(extra_ops or [])
        if len(ops) == 1:
            self.store.update_one(ops[0])  # a lone conditional update costs half a transaction
        else:
            self.store.transact(ops)
        merged = {**message, **updates}
        for field in remove:
            merged.pop(field, None)
        return merged

    def message_counter_ops(self, message: Mapping[str, Any], at: datetime,
                            deltas: Mapping[str, int]) -> list[dict[str, Any]]:
        counts = Counts(self.timezone)
        counts.add_message(message, at, deltas)
        return counts.ops(self.store)

    def _counter_ops(self, scopes: tuple[str, ...], now: datetime, deltas: Mapping[str, int]) -> list[dict[str, Any]]:
        counts = Counts(self.timezone)
        counts.add(scopes, now, deltas)
        return counts.ops(self.store)

    def sid_link_op(self, provider_sid: str, msg_id: str) -> dict[str, Any]:
        return self.store.put_op({"pk": f"SID#{provider_sid}", "sk": "SID", "message_id": msg_id})

    def last_text_op(self, message: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Remember the latest text a phone got from a sending number: its reply or opt-out is
        counted against that text (its campaign, creative, number, the hour it went)."""
        return self.store.put_op({"pk": f"PHONE#{message['to']}", "sk": f"LAST#{message['from_number']}",
                                  "message_id": message["message_id"], "sent_at": iso(now),
                                  "expires_at": int(now.timestamp()) + LAST_TEXT_TTL_S})

    def last_text(self, phone: str, number: str, now: datetime) -> dict[str, Any] | None:
        """The latest text `phone` got from `number` (within LAST_TEXT_TTL_S of `now`), as its message."""
        pointer = self.store.get(f"PHONE#{phone}", f"LAST#{number}", consistent=False)
        if not pointer or int(pointer.get("expires_at", 0)) < int(now.timestamp()):
            return None  # TTL removes an expired item some time after it expires
        return self.get_message(pointer["message_id"])

    def find_by_sid(self, provider_sid: str) -> dict[str, Any] | None:
        link = self.store.get(f"SID#{provider_sid}", "SID")
        if not link:
            return None
        return self.get_message(link.get("message_id") or message_id(link["lead_id"], int(link["step"])))

    def park_early_receipt(self, provider_sid: str, status: str, params: Mapping[str, str], now: datetime) -> None:
        self.store.update(f"SID#{provider_sid}", "EARLY", set_fields={
            f"receipt_{status}": dict(params), "expires_at": int((now + timedelta(days=2)).timestamp())})

    def take_early_receipts(self, provider_sid: str) -> list[dict[str, str]]:
        """Receipts parked for this sid (one GetItem after each send; usually none)."""
        item = self.store.get(f"SID#{provider_sid}", "EARLY")
        if not item:
            return []
        self.store.delete(f"SID#{provider_sid}", "EARLY")
        return [value for key, value in sorted(item.items()) if key.startswith("receipt_")]

    # -- a phone's leads and consent events ----------------------------------------------------
    def leads_for_phone(self, phone: str, limit: int = 200) -> list[dict[str, Any]]:
        """The phone's leads, newest first: lead id, flow, sending number and consent."""
        return [_public(i) for i in self.store.query(f"PHONE#{phone}", sk_prefix="LEAD#", newest_first=True,
                                                     limit=limit)]

    def tag_lead(self, lead_id: str, tag: str) -> None:
        item = self.store.get(f"LEAD#{lead_id}", "META")
        if item:
            self.store.update(f"LEAD#{lead_id}", "META", set_fields={"tags": sorted({*(item.get("tags") or []), tag})})

    def put_phone_event(self, phone: str, event: Mapping[str, Any]) -> None:
        """An opt-out or opt-in as it came (keyword, body, number texted), kept with the phone."""
        self.store.put({"pk": f"PHONE#{phone}", "sk": f"EVENT#{event['at']}#{event['message_sid']}", **event})

    def phone_events(self, phone: str, limit: int = 200) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query(f"PHONE#{phone}", sk_prefix="EVENT#", newest_first=True,
                                                     limit=limit)]

    # -- inbound texts ------------------------------------------------------------------------
    def put_inbound(self, record: Mapping[str, Any], answered: Mapping[str, Any] | None = None) -> bool:
        """Stored once per provider sid (Twilio may retry a webhook); False when it was stored
        before. Counted in the same transaction: for the number texted (and its brand) when it
        came, and, when it answers `answered` (the latest text the sender got from that number),
        as that text's reply or opt-out, in the hour that text went."""
        day = record["received_at"][:10]
        item = {"pk": f"INBOUND#{record['message_sid']}", "sk": "INBOUND", "gsi1pk": f"INBOX#{day}",
                "gsi1sk": f"{record['received_at']}#{record['message_sid']}", **record}
        received = parse_iso(record["received_at"])
        counts = Counts(self.timezone)
        counts.add(inbound_scopes(record), received, inbound_deltas(record.get("intent") or "none"))
        if answered is not None:
            counts.add_message(answered, parse_iso(answered["attempted_at"]),
                               reply_deltas(record.get("intent") or "none", record.get("action") or ""))
        ops = [self.store.put_op(item, "attribute_not_exists(pk)"), *counts.ops(self.store)]
        try:
            self.store.transact(ops)
        except ConditionFailed:
            return False
        return True

    def get_inbound(self, message_sid: str) -> dict[str, Any] | None:
        item = self.store.get(f"INBOUND#{message_sid}", "INBOUND")
        return _public(item) if item else None

    def update_inbound(self, message_sid: str, fields: Mapping[str, Any]) -> None:
        self.store.update(f"INBOUND#{message_sid}", "INBOUND", set_fields=fields)

    def inbound_on_day(self, day: str, *, before: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """One day's inbound texts, newest first (`day` YYYY-MM-DD in UTC), each with its sort
        key in `_sort`; `before` continues below a sort key already seen."""
        items = self.store.query(f"INBOX#{day}", index=GSI1, newest_first=True, limit=limit + 1 if before else limit,
                                 **({"sk_upto": before} if before else {}))
        return [{**_public(i), "_sort": i["gsi1sk"]} for i in items if i["gsi1sk"] != before][:limit]

    # -- do-not-contact -----------------------------------------------------------------------
    # DNC#{phone} / DNC is the entry (source, added_at, detail; for auto-DNC the carrier's code
    # and the message ids that caused it), listed newest first under gsi1 DNCS /
    # {added_at}#{phone}. DNCSTRIKE#{phone} / DNCSTRIKE holds the delivery failures counted
    # towards auto-DNC.
    def get_dnc(self, phone: str) -> dict[str, Any] | None:
        item = self.store.get(f"DNC#{phone}", "DNC")
        return _public(item) if item else None

    def dnc_among(self, phones: Iterable[str]) -> set[str]:
        return {i["phone"] for i in self.store.batch_get((f"DNC#{p}", "DNC") for p in phones)}

    @staticmethod
    def _dnc_item(phone: str, source: str, now: datetime, detail: str | None, code: str | None,
                  message_ids: Sequence[str] | None) -> dict[str, Any]:
        added_at = iso(now)
        return {"pk": f"DNC#{phone}", "sk": "DNC", "phone": phone, "source": source, "detail": detail,
                "added_at": added_at, "code": code, "message_ids": list(message_ids) if message_ids else None,
                "gsi1pk": DNC_LISTING, "gsi1sk": f"{added_at}#{phone}"}

    def add_dnc(self, phone: str, source: str, now: datetime, detail: str | None = None, *,
                code: str | None = None, message_ids: Sequence[str] | None = None) -> bool:
        """Put a number on the list; False when it was already there (the first entry stays)."""
        try:
            self.store.put(self._dnc_item(phone, source, now, detail, code, message_ids),
                           condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def add_dnc_many(self, details: Mapping[str, str | None], source: str, now: datetime) -> set[str]:
        """Put up to DNC_BATCH numbers (phone -> detail) on the list; returns the ones that were
        not on it. One BatchGetItem finds those already listed and one transaction of conditional
        puts adds the rest. A number listed between the two (a STOP that just came in) fails the
        transaction, and the numbers are then added one by one: the first entry always stays."""
        if len(details) > DNC_BATCH:
            raise ValueError(f"at most {DNC_BATCH} numbers at a time")
        listed = self.dnc_among(details)
        new = [phone for phone in details if phone not in listed]
        if len(new) <= 1:
            return {phone for phone in new if self.add_dnc(phone, source, now, details[phone])}
        ops = [self.store.put_op(self._dnc_item(phone, source, now, details[phone], None, None),
                                 "attribute_not_exists(pk)") for phone in new]
        try:
            self.store.transact(ops)
        except ConditionFailed:
            return {phone for phone in new if self.add_dnc(phone, source, now, details[phone])}
        return set(new)

    def list_dnc(self, *, after: str | None = None, since: str | None = None, until: str | None = None,
                 keep: Callable[[dict[str, Any]], bool] | None = None, limit: int = 50,
                 examine: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Entries newest first, added within [since, until] (ISO times), that `keep` accepts.

        At most `limit` entries, out of at most `examine` entries read (default `limit`: without
        a filter every entry read is returned). The second value is where the next page starts
        (pass it back as `after`), None when the list has no more. Raises ValueError for an
        `after` this method did not give."""
        if after is not None and not _DNC_POSITION.fullmatch(after):
            raise ValueError("not a position in the DNC list")
        examine = max(examine or limit, limit)
        bounds = [bound for bound in (after, until and f"{until}#~") if bound]  # '~' sorts after "#+1..."
        upto = min(bounds) if bounds else None
        entries: list[dict[str, Any]] = []
        examined, position = 0, None
        # Two more than examined: the entry at `after` itself, and one that shows more follow.
        for item in self.store.query(DNC_LISTING, index=GSI1, sk_upto=upto, newest_first=True,
                                     limit=examine + 2):
            if item["gsi1sk"] == after:
                continue
            if since and item["added_at"] < since:
                return entries, None
            if len(entries) == limit or examined == examine:
                return entries, position
            examined, position = examined + 1, item["gsi1sk"]
            entry = _public(item)
            if keep is None or keep(entry):
                entries.append(entry)
        return entries, None

    def all_dnc(self) -> Iterator[dict[str, Any]]:
        """Every listed entry, newest first, read a page at a time as the caller goes."""
        return (_public(item) for item in self.store.query(DNC_LISTING, index=GSI1, newest_first=True))

    def remove_dnc(self, phone: str) -> bool:
        """Take a number off the list. Its counted delivery failures go too: the operator's
        decision gives it a fresh start rather than a return at its next failure."""
        self.store.delete(f"DNCSTRIKE#{phone}", "DNCSTRIKE")
        try:
            self.store.delete(f"DNC#{phone}", "DNC", must_exist=True)
        except ConditionFailed:
            return False
        return True

    def add_dnc_strike(self, phone: str, msg_id: str, code: str, now: datetime) -> dict[str, Any]:
        """Count a failed message against its recipient, once however often the failure is
        reported: the message ids are a set, grown by one atomic ADD. Returns the strikes:
        `message_ids` (sorted) and `failures` ("{message_id}:{code}", sorted)."""
        item = self.store.update(f"DNCSTRIKE#{phone}", "DNCSTRIKE",
                                 set_fields={"phone": phone, "last_code": code, "updated_at": iso(now)},
                                 add={"message_ids": {msg_id}, "failures": {f"{msg_id}:{code}"}},
                                 return_new=True) or {}
        return {**_public(item), "message_ids": sorted(item.get("message_ids") or ()),
                "failures": sorted(item.get("failures") or ())}

    # -- the catalog: brands, sending numbers, templates, contact lists, campaigns, imports ----
    # Each is ENTITY#{id} / META, listed newest first under gsi1 {KIND}S, or (sending numbers,
    # contacts) under a key that serves their own access pattern.
    def create_entity(self, kind: str, entity_id: str, fields: Mapping[str, Any], *,
                      listing: tuple[str, str] | None = None) -> None:
        """Store a new entity; raises ConditionFailed if one with this id exists."""
        item = {"pk": f"{kind}#{entity_id}", "sk": "META", **fields}
        if listing:
            item.update(gsi1pk=listing[0], gsi1sk=listing[1])
        self.store.put(item, condition="attribute_not_exists(pk)")

    def get_entity(self, kind: str, entity_id: str, consistent: bool = False) -> dict[str, Any] | None:
        if not _plausible_id(entity_id):
            return None
        item = self.store.get(f"{kind}#{entity_id}", "META", consistent=consistent)
        return _public(item) if item else None

    def list_entities(self, listing_pk: str, *, prefix: str | None = None, limit: int = 500,
                      newest_first: bool = True) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query(listing_pk, index=GSI1, sk_prefix=prefix,
                                                     newest_first=newest_first, limit=limit)]

    def update_entity(self, kind: str, entity_id: str, *, set_fields: Mapping[str, Any] | None = None,
                      remove: Iterable[str] = (), add: Mapping[str, int] | None = None,
                      condition: str | None = None, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Change an existing entity; KeyError if there is none, ConditionFailed if `condition`
        (on top of existence) does not hold."""
        if not _plausible_id(entity_id):
            raise KeyError(entity_id)
        full = "attribute_exists(pk)" + (f" AND ({condition})" if condition else "")
        try:
            item = self.store.update(f"{kind}#{entity_id}", "META", set_fields=set_fields, remove=remove, add=add,
                                     condition=full, condition_values=values, return_new=True)
        except ConditionFailed:
            if self.store.get(f"{kind}#{entity_id}", "META") is None:
                raise KeyError(entity_id) from None
            raise
        return _public(item or {})

    def delete_entity(self, kind: str, entity_id: str) -> bool:
        try:
            self.store.delete(f"{kind}#{entity_id}", "META", must_exist=True)
        except ConditionFailed:
            return False
        return True

    # -- account settings ------------------------------------------------------------------------
    def get_settings(self) -> dict[str, Any]:
        item = self.store.get("SETTINGS", "ACCOUNT", consistent=False)
        return _public(item) if item else {}

    def put_settings(self, settings: Mapping[str, Any]) -> None:
        self.store.put({"pk": "SETTINGS", "sk": "ACCOUNT", **settings})

    # -- contacts of a list ----------------------------------------------------------------------
    def put_contacts(self, list_id: str, contacts: Iterable[Mapping[str, Any]]) -> int:
        """Upsert contacts (keyed by phone, so a phone appears once per list however often
        it is imported); the newest import's fields win."""
        return self.store.batch_put({"pk": f"LIST#{list_id}", "sk": f"C#{c['phone']}", **c} for c in contacts)

    def contacts_in_list(self, list_id: str, phones: Iterable[str]) -> dict[str, str]:
        """Which of these phones the list has already, with when each joined it."""
        found = self.store.batch_get((f"LIST#{list_id}", f"C#{p}") for p in phones)
        return {i["phone"]: i.get("added_at") or i.get("imported_at") or "" for i in found}

    def contacts_after(self, list_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Contacts in phone order after the cursor (a contact's sort key), for paced dispatch."""
        found = self.store.query(f"LIST#{list_id}", sk_after=after or "C#", limit=limit)
        return [i for i in found if i["sk"].startswith("C#")]

    def first_contact(self, list_id: str) -> dict[str, Any] | None:
        return next(iter(self.contacts_after(list_id, None, 1)), None)

    # -- campaigns on the move ----------------------------------------------------------------
    @staticmethod
    def live_campaign_fields(campaign_id: str) -> dict[str, str]:
        """Puts a campaign in the sparse index the dispatcher and auto-pause check read."""
        return {"due_pk": "LIVECAMPAIGNS", "due_sk": campaign_id}

    def live_campaigns(self) -> list[dict[str, Any]]:
        return [_public(i) for i in self.store.query("LIVECAMPAIGNS", index=DUE)]

    def retire_campaign(self, campaign_id: str, fields: Mapping[str, Any], expected_status: str) -> dict[str, Any]:
        """Take a campaign out of the live index (it is completed, or cancelled and drained)."""
        return self.update_entity("CAMPAIGN", campaign_id, set_fields=fields, remove=("due_pk", "due_sk"),
                                  condition="#c_status = :current", values={":current": expected_status})

    def release_contacts(self, campaign_id: str, messages: list[Mapping[str, Any]], now: datetime, *,
                         cursor: str | None, new_cursor: str, exhausted: bool,
                         extra: Mapping[str, int] | None = None) -> None:
        """Create a campaign's messages for the next contacts and move its cursor past them,
        in one transaction: a crash leaves either both or neither, and a second dispatcher
        working from the same cursor fails its condition instead of texting anyone twice."""
        stamp = iso(now)
        condition = "attribute_not_exists(#c_cursor)" if cursor is None else "#c_cursor = :cursor"
        condition += " AND #c_status = :running"
        values = {":running": "running"} if cursor is None else {":cursor": cursor, ":running": "running"}
        ops = [self.store.update_op(f"CAMPAIGN#{campaign_id}", "META",
                                    set_fields={"cursor": new_cursor, "contacts_exhausted": exhausted},
                                    condition=condition, condition_values=values)]
        ops += [self.store.put_op(self.message_item(m, stamp), "attribute_not_exists(pk)") for m in messages]
        if messages:
            waiting = sum(1 for m in messages if m["status"] == MessageStatus.SCHEDULED)
            deltas = {"messages": len(messages), "waiting": waiting, **(extra or {})}
            ops += self._counter_ops(("ALL", f"CAMP#{campaign_id}"), now, deltas)
        self.store.transact(ops)

    def campaign_waiting(self, campaign_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """A campaign's messages not yet queued whose time has come (parked by a pause,
        deferred to the send window, or not taken by SQS)."""
        return list(self.store.query(f"CDUE#{campaign_id}", index=DUE, sk_upto=iso(now) + "~", limit=limit))

    def campaign_has_waiting(self, campaign_id: str) -> bool:
        return next(iter(self.store.query(f"CDUE#{campaign_id}", index=DUE, limit=1)), None) is not None

    def reserve_send_time(self, limits: Sequence[tuple[str, int]], now_us: int, horizon_us: int,
                          give_way: bool = False) -> int | None:
        """One moment (epoch microseconds) at which a send may go under every limit at once:
        `limits` pairs a key (a campaign, a sending number) with the spacing its rate asks for.
        The moment is the latest of now and each key's next free moment; every key's next free
        moment then moves to the moment plus its spacing, so each key's sends are at least its
        spacing apart and no one-second window holds more than its rate. None when the moment
        would be more than `horizon_us` away, or, with `give_way`, when another key would make
        the first key's turn wait more than a quarter of the first key's spacing (a busy number
        does not hold its campaign's turn: its text waits in the queue while other numbers' texts
        go; waiting for it would leave the campaign's turn unused, and at a number MPS that is a
        whole multiple of the campaign's spacing that was one campaign turn in ten).

        One item per key holds its next free moment. The keys move together in one conditional
        write (a transaction when there are two), so a send never takes a turn from one key and
        goes at another's. The environment remembers the moments it last saw; when another
        sender moved on meanwhile the write fails, the items are read and the moment recomputed."""
        expires = now_us // 1_000_000 + 86_400
        known = {key: self._pace_hints.get(key, 0) for key, _ in limits}
        for _ in range(5):
            moment = max(now_us, *known.values())
            if moment - now_us > horizon_us:
                return None
            first_key, first_interval = limits[0]
            if give_way and moment > max(now_us, known[first_key]) + first_interval // GIVE_WAY_SHARE:
                return None
            ops = [self.store.update_op(f"PACE#{key}", "PACE",
                                        set_fields={"next_at": moment + interval, "expires_at": expires},
                                        condition="attribute_not_exists(#c_next_at) OR #c_next_at <= :moment",
                                        condition_values={":moment": moment})
                   for key, interval in limits]
            try:
                if len(ops) == 1:
                    self.store.update_one(ops[0])
                else:
                    self.store.transact(ops)
            except ConditionFailed:
                for key, _ in limits:
                    item = self.store.get(f"PACE#{key}", "PACE")
                    known[key] = int(item["next_at"]) if item else 0
                    self._pace_hints[key] = known[key]
                continue
            for key, interval in limits:
                self._pace_hints[key] = moment + interval
            return moment
        return None

    def release_send_time(self, limits: Sequence[tuple[str, int]], moment_us: int) -> None:
        """Give back a reserved moment whose send did not happen, for each key nobody has
        queued behind since (otherwise the moment simply stays unused)."""
        for key, interval in limits:
            try:
                self.store.update(f"PACE#{key}", "PACE", set_fields={"next_at": moment_us},
                                  condition="#c_next_at = :after", condition_values={":after": moment_us + interval})
            except ConditionFailed:
                continue
            self._pace_hints[key] = moment_us

    # -- texts per recipient in 24 hours (the states that cap them) --------------------------------
    def recent_sends(self, phone: str) -> tuple[list[int], int]:
        """When (epoch seconds, oldest first) the latest capped texts to a phone went, and the
        version of that record, 0 when there is none. Only numbers whose state caps texts a day
        have one: PHONE#{phone} / RECENT."""
        item = self.store.get(f"PHONE#{phone}", "RECENT")
        if not item:
            return [], 0
        return sorted(int(t) for t in item.get("sent_at") or ()), int(item.get("version") or 0)

    def note_recent_send(self, phone: str, kept: Sequence[int], version: int, at: int) -> None:
        """Count a text about to go to `phone` at `at`, keeping `kept` (the sends still inside
        24 hours), provided nobody counted one since `version` was read: ConditionFailed
        otherwise, and the caller reads again."""
        self.store.update(f"PHONE#{phone}", "RECENT",
                          set_fields={"sent_at": [*kept, at], "version": version + 1, "expires_at": at + 2 * 86_400},
                          condition="attribute_not_exists(#c_version) OR #c_version = :version",
                          condition_values={":version": version})

    # -- phone validation results (30-day cache) ------------------------------------------------
    def get_phone_intel(self, phone: str, provider: str, now: datetime) -> dict[str, Any] | None:
        """A provider's answer for a phone, while it is fresh (each provider's kept apart:
        a line type alone says nothing of activity)."""
        item = self.store.get(f"INTEL#{phone}", f"INTEL#{provider}", consistent=False)
        if not item or int(item.get("expires_at", 0)) < int(now.timestamp()):
            return None
        return _public(item)

    def put_phone_intel(self, phone: str, provider: str, intel: Mapping[str, Any], now: datetime,
                        ttl: timedelta) -> None:
        self.store.put({"pk": f"INTEL#{phone}", "sk": f"INTEL#{provider}", **intel, "looked_up_at": iso(now),
                        "expires_at": int((now + ttl).timestamp())})

    def count(self, scopes: tuple[str, ...], now: datetime, deltas: Mapping[str, int]) -> None:
        """Counters outside a status change (lookups made, alerts raised)."""
        ops = self._counter_ops(scopes, now, deltas)
        if len(ops) == 1:
            self.store.update_one(ops[0])
        elif ops:
            self.store.transact(ops)

    def put_message(self, message: Mapping[str, Any], now: datetime) -> None:
        """Store one new message on its own (a quick send)."""
        self.store.put(self.message_item(message, iso(now)), condition="attribute_not_exists(pk)")
