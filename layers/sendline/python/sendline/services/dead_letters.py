"""Dead letters: the messages that failed every retry, listed, inspected and moved back.

Inspecting receives messages with a short visibility timeout and makes them visible again at
once, so nothing is consumed. Re-driving receives a batch, sends each body (and message
attributes) to the queue the dead-letter queue catches for, and deletes from the dead-letter
queue only what SQS took: a failure between the two leaves a copy in both queues, never none.
That copy is harmless on the sends queue: the send worker claims a message id before it calls the
carrier and never sends a message twice (services/sending.py).

What an operator sees of a message: ids, receive count, times, and the body with phone numbers
masked as the message log masks them and any text replaced by its length (services/message_log.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from aws_lambda_powertools import Logger

from sendline.adapters.queue import QueuedMessage, SendRequest, WorkQueues, queue_name_of
from sendline.domain.clock import iso
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.errors import FieldProblem, NotFound, ValidationFailed

logger = Logger(child=True)

INSPECT_LIMIT = 10
MAX_INSPECT_LIMIT = 100
# Inspected messages stay hidden while the rest are received, then are released at once.
INSPECT_HIDE_S = 20
REDRIVE_MAX = 100
MAX_REDRIVE_MAX = 1000
# A received batch stays hidden this long: ample for sending its copies and deleting it.
REDRIVE_HIDE_S = 60
# A redrive stops while this much of the invocation's time is left (the rest is a later call's).
REDRIVE_RESERVE_S = 5.0

# Keys whose string values are message texts (a lead's or a quick send's): shown by length only.
TEXT_KEYS = frozenset({"body", "text", "message", "message_body", "message_text", "content", "initial_message",
                       "sms", "sms_text", "sms_body", "msg", "text_body", "reply", "caption"})
# Keys whose values are phone numbers, whatever they look like.
PHONE_KEY = re.compile(r"phone|mobile|cell|^to$|^from$|number", re.IGNORECASE)
# A phone number inside any text: E.164 (its + also percent-encoded, as in a URL), or a North
# American number written the usual ways, with any extension. Never part of a longer word or
# number (ids and timestamps hold long runs of digits).
EMBEDDED_PHONE = re.compile(
    r"(?<![\w+%])(?:(?:\+|%2[Bb])\d{8,15}|(?:\+?1[\s.\-]?)?\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]?\d{4})"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?(?!\w)", re.IGNORECASE)
# What the pattern leaves: international numbers written with spaces or dashes (+44 20 7946 0958).
INTERNATIONAL_MATCHER_LENIENCY = phonenumbers.Leniency.POSSIBLE


def _masked_digits(text: str) -> str:
    text = re.sub(r"(?i)%2b", "+", text)
    text = re.sub(r"(?i)\s*(?:x|ext\.?|extension)\s*\d{1,6}$", "", text.strip())
    try:
        return mask_phone(normalise_phone(text).e164)  # Excel's 2.125550142E+09 included
    except PhoneRejected:
        digits = re.sub(r"\D", "", text)
        return mask_phone("+1" + digits if len(digits) == 10 else "+" + digits)


def mask_text(text: str) -> str:
    """Every phone number in `text` masked: `call +12125550142` -> `call +1212***0142`."""
    masked = EMBEDDED_PHONE.sub(lambda match: _masked_digits(match.group(0)), text)
    if "+" not in masked:
        return masked
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(
        masked, None, leniency=INTERNATIONAL_MATCHER_LENIENCY)]
    for start, end in reversed(spans):
        e164 = "+" + re.sub(r"\D", "", masked[start:end])
        masked = masked[:start] + mask_phone(e164) + masked[end:]
    return masked


def _mask_value(key: str | None, value: Any) -> Any:
    if isinstance(value, dict):
        return {mask_text(k): _mask_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(key, v) for v in value]
    phone_key = key is not None and bool(PHONE_KEY.search(key))
    if isinstance(value, str):
        if key is not None and key.lower() in TEXT_KEYS:
            return f"[{len(value)} characters hidden]"
        if phone_key and sum(c.isdigit() for c in value) >= 7:
            return _masked_digits(value)
        return mask_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and phone_key and abs(value) >= 1_000_000:
        return _masked_digits(str(int(value)) if value == int(value) else str(value))
    return value


def mask_body(body: str) -> Any:
    """A queued message's body as an operator may see it: JSON parsed, with phone numbers masked
    and texts replaced by their length; anything else as text with phone numbers masked."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return mask_text(body)
    return _mask_value(None, parsed)


def _send_request_id(body: str) -> str | None:
    try:
        return SendRequest.from_body(body).message_id
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def _epoch_ms(value: str | None) -> str | None:
    if not value or not value.isdigit():
        return None
    return iso(datetime.fromtimestamp(int(value) / 1000, UTC))


def describe(message: QueuedMessage, source_queue: str) -> dict[str, Any]:
    """One dead letter: SQS's id, the message id it asks to send (send requests), how often it
    was received (this look included), when it was first queued and first received, the queue it
    came from and its masked body."""
    attributes = message.attributes
    source = attributes.get("DeadLetterQueueSourceArn")
    return {
        "sqs_message_id": message.sqs_message_id,
        "message_id": _send_request_id(message.body),
        "receive_count": int(attributes.get("ApproximateReceiveCount", "0") or 0),
        "sent_at": _epoch_ms(attributes.get("SentTimestamp")),
        "first_received_at": _epoch_ms(attributes.get("ApproximateFirstReceiveTimestamp")),
        "source_queue": queue_name_of(source) if source else source_queue,
        "body": mask_body(message.body),
    }


def _dlq_url(queues: WorkQueues, name: str) -> str:
    url = queues.dlq_urls.get(name)
    if url is None:
        known = ", ".join(sorted(queues.dlq_urls)) or "none"
        raise NotFound(FieldProblem("queue", f"no dead-letter queue is called {name!r}; there are: {known}"))
    return url


def list_dead_letters(queues: WorkQueues) -> dict[str, Any]:
    """Each dead-letter queue with how many messages it holds (visible, and in flight while
    someone inspects or re-drives them)."""
    rows = []
    for name, url in sorted(queues.dlq_urls.items()):
        depth = queues.depth(url)
        rows.append({"queue": name, "dlq_name": queue_name_of(url), "messages": depth.held,
                     "visible": depth.visible, "in_flight": depth.in_flight})
    return {"dead_letters": rows, "total": sum(r["messages"] for r in rows)}


def _receive(queues: WorkQueues, url: str, wanted: int, hide_s: int) -> list[QueuedMessage]:
    """A batch; an empty short poll is asked again with a long poll (a short poll samples only
    some of SQS's servers and can come back empty while messages wait)."""
    batch = queues.receive(url, wanted, hide_s=hide_s)
    return batch or queues.receive(url, wanted, hide_s=hide_s, wait_s=1)


def inspect_dead_letters(queues: WorkQueues, name: str, limit: int = INSPECT_LIMIT) -> dict[str, Any]:
    """Up to `limit` messages of a dead-letter queue, oldest first, left on the queue."""
    url = _dlq_url(queues, name)
    depth = queues.depth(url)
    source = queue_name_of(queues.queue_urls[name]) if name in queues.queue_urls else name
    wanted = min(limit, depth.visible)
    # By SQS id: a message whose hiding ran out while the rest were received comes again.
    seen: dict[str, QueuedMessage] = {}
    try:
        while len(seen) < wanted:
            batch = _receive(queues, url, wanted - len(seen), INSPECT_HIDE_S)
            new = [m for m in batch if m.sqs_message_id not in seen]
            seen.update((m.sqs_message_id, m) for m in batch)
            if not new:
                break
    finally:
        queues.release(url, list(seen.values()))
    messages = sorted((describe(m, source) for m in seen.values()),
                      key=lambda m: (m["sent_at"] or "", m["sqs_message_id"]))
    return {"queue": name, "dlq_name": queue_name_of(url), "messages_in_queue": depth.held,
            "shown": len(messages), "messages": messages}


def redrive_limit(body: Any) -> int:
    """How many messages a redrive request's body (`{"max": n}`; `{}` for none) asks to move."""
    if not isinstance(body, dict):
        raise ValidationFailed(FieldProblem("body", 'must be a JSON object such as {"max": 10}'))
    for name in sorted(set(body) - {"max"}):
        raise ValidationFailed(FieldProblem(name, "is not a field of a redrive; send only max"))
    value = body.get("max", REDRIVE_MAX)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REDRIVE_MAX:
        raise ValidationFailed(FieldProblem("max", f"must be a whole number from 1 to {MAX_REDRIVE_MAX}"))
    return value


def redrive_dead_letters(queues: WorkQueues, name: str, max_messages: int = REDRIVE_MAX, *,
                         time_left_s: Callable[[], float] = lambda: math.inf,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Moves up to `max_messages` of a dead-letter queue back to its queue; stops early when the
    caller's time runs short or SQS refuses a copy. `progress(moved, target)` follows it."""
    url = _dlq_url(queues, name)
    source_url = queues.queue_urls.get(name)
    if source_url is None:
        raise NotFound(FieldProblem("queue", f"{name!r} has a dead-letter queue but no queue to move messages back to"))
    target = min(max_messages, queues.depth(url).visible)
    moved = refused = not_deleted = 0
    while moved < target and time_left_s() > REDRIVE_RESERVE_S:
        batch = _receive(queues, url, min(10, target - moved), REDRIVE_HIDE_S)
        if not batch:
            break
        sent = queues.send_copies(source_url, batch)
        unsent = [m for m in batch if m not in sent]
        if unsent:
            queues.release(url, unsent)
        kept = queues.delete(url, sent)
        if kept:
            # Their copies are on the queue already; these come back to the dead-letter queue
            # after REDRIVE_HIDE_S and would be a second copy if re-driven again.
            logger.warning("re-driven messages not deleted from the dead-letter queue",
                           extra={"queue": name, "sqs_message_ids": [m.sqs_message_id for m in kept]})
        moved += len(sent)
        refused += len(unsent)
        not_deleted += len(kept)
        if progress:
            progress(moved, target)
        if unsent:
            break
    return {"queue": name, "to": queue_name_of(source_url), "moved": moved, "refused": refused,
            "not_deleted": not_deleted, "remaining": queues.depth(url).held}
