"""The operators' message log: every text, newest first, as it is now; filtered, page by page,
or as a CSV file.

Where it reads: the `log` index (records.LOG), partition `LOG#{hour}` (the UTC hour a message
was created), sort key `{created_at}#{message_id}`, keys only. Both are written once, when the
message is created, so a status change never moves a message in the log: the cursor (an hour
and the last sort key read) goes on exactly where its page ended, with no text shown twice and
none skipped, however the texts change between two pages. A request reads hour partitions
backwards from `to` down to `from`, then the messages themselves with BatchGetItem, so each row
shows its message's current status.

Filters are applied to the messages read, not by the index. A request reads at most
MAX_KEYS_PER_REQUEST index keys in at most MAX_READS_PER_REQUEST queries (an hour with no texts
costs one) and then stops: a sparse filter may give a short page, even an empty one, with a
`next_cursor` to go on from. `next_cursor` is null only when the range has been read to its end.

Messages created before the index existed have no place in it and are not listed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.clock import iso, parse_iso
from sendline.domain.contacts_csv import spreadsheet_line
from sendline.domain.counters import carrier_name
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.status import MessageStatus
from sendline.errors import FieldProblem, ValidationFailed

FILTERS = ("status", "campaign_id", "flow_id", "brand_id", "from_number", "carrier", "creative_id", "error_code",
           "phone")
EXPORT_PARAMS = ("from", "to", "cursor", "unmask", *FILTERS)
PAGE_PARAMS = (*EXPORT_PARAMS, "limit")
COLUMNS = ("time", "sent_at", "phone", "body", "creative_id", "carrier", "brand_id", "from_number", "status",
           "error_code", "campaign_id", "flow_id", "message_id", "segments", "cost")
STATUSES = tuple(s.value for s in MessageStatus)

HOUR = timedelta(hours=1)
DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE_DAYS = 92
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER_LENGTH = 100
KEYS_PER_READ = 100  # what one BatchGetItem takes
# The most one page request reads, whatever its filter: index keys, and index queries.
MAX_KEYS_PER_REQUEST = 5_000
MAX_READS_PER_REQUEST = 200
# One export file: Lambda sends at most 6 MB back, with the body escaped inside a JSON
# document, so a file ends at 5 MB of escaped text (or after reading 20,000 keys, to stay well
# inside the function's timeout) and X-Next-Cursor says where the next file goes on.
MAX_EXPORT_BYTES = 5_000_000
MAX_EXPORT_KEYS = 20_000
MAX_EXPORT_READS = 400
NEXT_CURSOR_HEADER = "X-Next-Cursor"


@dataclass(frozen=True)
class Position:
    """Where the log is read on from: an hour partition, below a sort key (None: all of it)."""

    hour: datetime
    below: str | None


@dataclass(frozen=True)
class LogRequest:
    """What an operator asked for: messages created from `since` on, read from `start`."""

    since: datetime
    start: Position
    filters: Mapping[str, str]  # filter name -> the value wanted, normalised
    unmask: bool = False

    def matches(self, message: Mapping[str, Any]) -> bool:
        return all(_compared(message, name) == value for name, value in self.filters.items())


# -- the request ---------------------------------------------------------------------------------
def parse_request(query: Mapping[str, str | None], now: datetime) -> LogRequest:
    """The range, filters and cursor of a request, or a ValidationFailed naming the parameter.
    A cursor carries its listing's range: `from` and `to` are then only checked."""
    filters = {name: _filter_value(name, raw.strip()) for name in FILTERS
               if (raw := query.get(name)) is not None and raw.strip()}
    since, until = _range(query, now)
    if query.get("cursor"):
        since, start = _read_cursor(query["cursor"] or "")
    else:
        start = Position(_hour_of(until - timedelta(milliseconds=1)), Records.log_position(until))
    return LogRequest(since, start, filters, _flag(query, "unmask"))


def _filter_value(name: str, raw: str) -> str:
    if len(raw) > MAX_FILTER_LENGTH:
        raise ValidationFailed(FieldProblem(name, f"must be at most {MAX_FILTER_LENGTH} characters"))
    if name == "status":
        if raw.lower() not in STATUSES:
            raise ValidationFailed(FieldProblem(name, f"must be one of {', '.join(STATUSES)}"))
        return raw.lower()
    if name == "carrier":
        return carrier_name(raw).casefold()
    if name == "from_number" and raw.isdigit() and 5 <= len(raw) <= 6:
        return raw  # a short code
    if name in ("phone", "from_number"):
        try:
            return normalise_phone(raw).e164
        except PhoneRejected as exc:
            raise ValidationFailed(FieldProblem(name, exc.reason)) from None
    return raw


def _compared(message: Mapping[str, Any], name: str) -> str:
    """The message's value for a filter, in the filter's normalised form."""
    if name == "phone":
        return message.get("to") or ""
    if name == "carrier":
        return carrier_name(message.get("carrier")).casefold()
    value = message.get(name)
    return "" if value is None else str(value)


def _range(query: Mapping[str, str | None], now: datetime) -> tuple[datetime, datetime]:
    """[from, to): by default the last 24 hours; at most MAX_RANGE_DAYS."""
    until = _moment(query, "to") or now
    since = _moment(query, "from") or until - DEFAULT_RANGE
    if since >= until:
        raise ValidationFailed(FieldProblem("from", "must be before to"))
    if until - since > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationFailed(FieldProblem("from", f"must be at most {MAX_RANGE_DAYS} days before to"))
    return since, until


def _moment(query: Mapping[str, str | None], name: str) -> datetime | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        moment = parse_iso(raw if "T" in raw else f"{raw}T00:00:00")
    except ValueError:
        raise ValidationFailed(FieldProblem(
            name, "must be a date (2026-12-01) or an ISO 8601 time (2026-12-01T14:00:00Z)")) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _flag(query: Mapping[str, str | None], name: str) -> bool:
    raw = (query.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ValidationFailed(FieldProblem(name, "must be true or false"))


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# -- the cursor: opaque to clients, [hour, sort key read below, the range's start] ---------------------
def _cursor(position: Position, since: datetime) -> str:
    text = json.dumps([f"{position.hour:%Y-%m-%dT%H}", position.below, iso(since)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, Position]:
    not_ours = ValidationFailed(FieldProblem("cursor", "is not a cursor this log gave"))
    try:
        hour, below, since = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = Position(datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC), below)
        start = parse_iso(since)
    except (binascii.Error, UnicodeDecodeError, AttributeError, TypeError, ValueError):
        raise not_ours from None
    if below is not None and not isinstance(below, str):
        raise not_ours
    # The range a cursor carries is one a first page could have had.
    span = position.hour + HOUR - start if start.tzinfo else None
    if span is None or not timedelta(0) < span <= timedelta(days=MAX_RANGE_DAYS) + HOUR:
        raise not_ours
    return start, position


# -- reading the log ---------------------------------------------------------------------------------
class _LogReader:
    """Reads the log newest first from the request's start down to its `since`, within a budget
    of index keys and queries, handing out the messages that match its filters.

    `position` is where a next read goes on from: the last message handed out (while the caller
    holds it), or the last key looked at; None once the range has been read to its end."""

    def __init__(self, records: Records, request: LogRequest, *, max_keys: int, max_reads: int, read_size: int):
        self.records = records
        self.request = request
        self.position: Position | None = request.start
        self._floor = Records.log_position(request.since)
        self._floor_hour = _hour_of(request.since)
        self._max_keys, self._max_reads, self._read_size = max_keys, max_reads, read_size

    def matching(self) -> Iterator[dict[str, Any]]:
        keys_read = reads = 0
        while self.position is not None and keys_read < self._max_keys and reads < self._max_reads:
            hour = self.position.hour
            size = min(self._read_size, self._max_keys - keys_read)
            keys = self.records.message_log_keys(hour, below=self.position.below, limit=size)
            reads += 1
            keys_read += len(keys)
            messages = self.records.messages_at(key for _, key in keys) if keys else {}
            for sort_key, key in keys:
                if sort_key < self._floor:
                    self.position = None  # created before the range
                    return
                self.position = Position(hour, sort_key)
                message = messages.get(key)
                if message is not None and self.request.matches(message):
                    yield message
            if len(keys) < size:
                earlier = hour - HOUR
                self.position = Position(earlier, None) if earlier >= self._floor_hour else None


def read_page(records: Records, request: LogRequest, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """One page: up to `limit` rows, newest first, and the cursor of the next page."""
    # Unfiltered, a page needs one key beyond its rows (is there more?); filtered, whole batches.
    read_size = KEYS_PER_READ if request.filters else min(KEYS_PER_READ, limit + 1)
    reader = _LogReader(records, request, max_keys=MAX_KEYS_PER_REQUEST, max_reads=MAX_READS_PER_REQUEST,
                        read_size=read_size)
    matching = reader.matching()
    messages = list(islice(matching, limit))
    resume = reader.position
    if len(messages) == limit and next(matching, None) is None and reader.position is None:
        resume = None  # the page ends exactly where the range does
    return {"messages": [log_row(m, request.unmask) for m in messages],
            "next_cursor": _cursor(resume, request.since) if resume else None}


def log_row(message: Mapping[str, Any], unmask: bool = False) -> dict[str, Any]:
    """What the log shows of a message; the phone masked unless the operator asked to see it."""
    cost_micros = message.get("cost_micros")
    return {
        "time": message.get("created_at"),
        "sent_at": message.get("sent_at"),
        "phone": message.get("to") if unmask else mask_phone(message.get("to")),
        "body": message.get("body"),
        "creative_id": message.get("creative_id"),
        "carrier": carrier_name(message.get("carrier")),
        "brand_id": message.get("brand_id"),
        "from_number": message.get("from_number"),
        "status": message.get("status"),
        "error_code": None if message.get("error_code") is None else str(message["error_code"]),
        "campaign_id": message.get("campaign_id"),
        "flow_id": message.get("flow_id"),
        "message_id": message.get("message_id"),
        "segments": message.get("segments"),
        "cost": None if cost_micros is None else round(int(cost_micros) / 1_000_000, 6),
    }


# -- the CSV export ----------------------------------------------------------------------------------
class CsvExport:
    """The log for a request as a CSV file, written line by line as the log is read, so at most
    one batch of messages is held at a time. Iterate it once; then `headers()` holds
    X-Next-Cursor when the file ended before the range did (its size or reading budget ran out):
    the same request with `?cursor=` gives the next file, without the rows this one has."""

    filename = "message-log.csv"

    def __init__(self, records: Records, request: LogRequest):
        self.records = records
        self.request = request
        self.next_cursor: str | None = None

    def __iter__(self) -> Iterator[str]:
        header = spreadsheet_line(COLUMNS)
        size = _response_size(header)
        yield header
        reader = _LogReader(self.records, self.request, max_keys=MAX_EXPORT_KEYS, max_reads=MAX_EXPORT_READS,
                            read_size=KEYS_PER_READ)
        resume: Position | None = self.request.start
        written = 0
        for message in reader.matching():
            row = log_row(message, self.request.unmask)
            line = spreadsheet_line(_cell(row[column]) for column in COLUMNS)
            size += _response_size(line)
            if size > MAX_EXPORT_BYTES and written:
                self.next_cursor = _cursor(resume, self.request.since) if resume else None
                return
            yield line
            written += 1
            resume = reader.position
        self.next_cursor = _cursor(reader.position, self.request.since) if reader.position else None

    def headers(self) -> dict[str, str]:
        return {NEXT_CURSOR_HEADER: self.next_cursor} if self.next_cursor else {}


def export_csv(records: Records, request: LogRequest) -> CsvExport:
    return CsvExport(records, request)


def _cell(value: Any) -> str | None:
    """A cell's text (spreadsheet_line makes it safe to open in a spreadsheet)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def _response_size(text: str) -> int:
    """What `text` adds to the Lambda response: the body travels JSON-escaped (quotes, line ends
    and every non-ASCII character spelled out)."""
    return len(json.dumps(text)) - 2
