"""`make demo`: a real-looking lead list through the HTTP API, end to end, with a report.

`python -m scripts.demo [--csv examples/leads.csv] [--state-dir .local] [--concurrency 10]
[--wait-minutes 6]`

Uses the local stack described by `<state-dir>/stack.json` when it answers, otherwise starts one
(`python -m devstack`) and stops it afterwards. Creates a flow with two drips a minute apart,
submits every row of the CSV as an integrator would (about ten requests in flight, 429 and
`Retry-After` honoured, an `Idempotency-Key` per row so a retry never texts twice), waits for the
delivery receipts and the drips, then prints what happened and checks two invariants:
accepted + rejected == rows, and every accepted lead has a recorded outcome for each message.
Exit status 0 only when both hold.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Self

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent

FINAL_STATUSES = frozenset(
    {"delivered", "undelivered", "failed", "skipped", "cancelled", "unknown"}
)
# A message in one of these has no outcome yet; `sent` is an outcome still awaiting its receipt.
IN_FLIGHT_STATUSES = frozenset({"scheduled", "queued", "sending"})
HANDED_TO_CARRIER = frozenset({"sent", "delivered", "undelivered"})
STATUS_ROWS = ("delivered", "undelivered", "failed", "skipped", "cancelled", "unknown")

LEAD_FIELDS = ("phone", "first_name", "last_name", "source", "email", "zip", "state")
MAX_RETRIES = 5
REQUEST_TIMEOUT_S = 30.0
ROWS_SHOWN_PER_REASON = 6
STACK_PROBE_TIMEOUT_S = 2.0
STACK_START_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 5.0
RECEIPT_PATIENCE_S = 120.0


def demo_flow(now: datetime | None = None) -> dict[str, Any]:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "name": f"Demo flow {stamp}",
        "from_number": "+12125550100",
        "call_number": "+18885550123",
        "initial_message": (
            "Hi {first_name}, thanks for your request! Call us at {call_number} "
            "or reply STOP to opt out."
        ),
        "drips": [
            {"delay_minutes": 1, "message": "{first_name}, still interested? Call {call_number}."},
            {
                "delay_minutes": 2,
                "message": "Last reminder: call {call_number} today. Reply STOP to opt out.",
            },
        ],
    }


# --------------------------------------------------------------------------------------------
# Results and the report (pure: no I/O, unit-tested without a server)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    """How the API answered one data row of the file."""

    row: int  # 1-based data row
    outcome: Literal["accepted", "rejected", "unanswered"]
    lead_id: str | None = None
    duplicate: bool = False
    drips_queued: int = 0
    submitted_at: datetime | None = None  # when the request that was accepted went out
    status_code: int | None = None
    reason: str | None = None  # "field: reason" for a rejection, the failure for no answer
    throttled: int = 0  # 429 answers honoured before the final one

    @classmethod
    def accepted(cls, row: int, lead_id: str, submitted_at: datetime, *, duplicate: bool = False,
                 drips_queued: int = 0, status_code: int = 200, throttled: int = 0) -> RowResult:
        return cls(row, "accepted", lead_id=lead_id, duplicate=duplicate,
                   drips_queued=drips_queued, submitted_at=submitted_at,
                   status_code=status_code, throttled=throttled)

    @classmethod
    def rejected(cls, row: int, status_code: int, reason: str, *, throttled: int = 0) -> RowResult:
        return cls(row, "rejected", status_code=status_code, reason=reason, throttled=throttled)

    @classmethod
    def unanswered(cls, row: int, reason: str, *, status_code: int | None = None,
                   throttled: int = 0) -> RowResult:
        return cls(row, "unanswered", status_code=status_code, reason=reason,
                   throttled=throttled)


@dataclass(frozen=True)
class Latency:
    n: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Summary:
    rows: int
    accepted: int
    new_leads: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejected_rows_by_reason: dict[str, list[int]]  # data row numbers, in file order
    unanswered: int
    unanswered_by_reason: dict[str, int]
    throttled: int
    steps: list[int]
    expected_by_step: dict[int, int]
    sent_by_step: dict[int, int]
    status_by_step: dict[int, dict[str, int]]
    errors_by_code: dict[tuple[str, str], int]  # (status, error code) -> messages
    skipped_by_reason: dict[tuple[str, str], int]  # (skipped | cancelled, reason) -> messages
    drips_queued: int
    drips_sent: int
    submit_to_sent: Latency
    submit_to_delivered: Latency
    leads_without_outcome: list[str]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.passed for check in self.checks)


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `percentile`% of the
    values at or below it, i.e. sorted(values)[ceil(p/100 * n) - 1]. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(values: Sequence[float]) -> Latency:
    return Latency(len(values), nearest_rank(values, 50), nearest_rank(values, 95))


def parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _step_number(message: Mapping[str, Any]) -> int | None:
    step = message.get("step")
    if isinstance(step, bool):
        return None
    if isinstance(step, int):
        return step
    if isinstance(step, str) and step.strip().isdigit():
        return int(step)
    return None


def _was_handed_to_carrier(message: Mapping[str, Any]) -> bool:
    return message.get("status") in HANDED_TO_CARRIER or bool(message.get("sent_at"))


def _skip_reason(message: Mapping[str, Any]) -> str:
    for key in ("skip_reason", "error_message", "error_code"):
        value = message.get(key)
        if value not in (None, ""):
            return str(value)
    return "no reason recorded"


def _rejection_key(row: RowResult) -> str:
    return row.reason or f"HTTP {row.status_code}"


def _primary_rows(rows: Iterable[RowResult]) -> dict[str, RowResult]:
    """Per lead, the row that created it (the first accepted row not flagged duplicate)."""
    primary: dict[str, RowResult] = {}
    for row in rows:
        if row.outcome != "accepted" or row.lead_id is None:
            continue
        current = primary.get(row.lead_id)
        if current is None or (current.duplicate and not row.duplicate):
            primary[row.lead_id] = row
    return primary


def summarise(rows_results: Sequence[RowResult],
              leads: Mapping[str, Mapping[str, Any] | None]) -> Summary:
    """Turn the submission results and the leads as last read from the API into the report.

    A lead is expected to have one message for the first text plus one per drip its submission
    queued (`drips_queued`), and any further message it shows; an expected message that never
    appeared counts as "missing", and a lead with a missing message, or with one still
    scheduled, queued or sending, has no recorded outcome.
    """
    accepted_rows = [r for r in rows_results if r.outcome == "accepted"]
    rejected_rows = [r for r in rows_results if r.outcome == "rejected"]
    unanswered_rows = [r for r in rows_results if r.outcome == "unanswered"]
    primary = _primary_rows(rows_results)

    all_steps = [
        step
        for lead in leads.values() if lead
        for message in lead.get("messages") or []
        if (step := _step_number(message)) is not None
    ]
    # Steps count from 0 (the first text); were they ever counted from 1, columns still line up.
    base = min(all_steps, default=0)

    expected_by_step: Counter[int] = Counter()
    sent_by_step: Counter[int] = Counter()
    status_by_step: dict[int, Counter[str]] = {}
    errors_by_code: Counter[tuple[str, str]] = Counter()
    skipped_by_reason: Counter[tuple[str, str]] = Counter()
    to_sent: list[float] = []
    to_delivered: list[float] = []
    without_outcome: list[str] = []

    for lead_id, origin in primary.items():
        expected = 1 + max(0, origin.drips_queued)
        lead = leads.get(lead_id)
        messages = list((lead or {}).get("messages") or [])
        by_index: dict[int, Mapping[str, Any]] = {}
        for position, message in enumerate(messages):
            step = _step_number(message)
            by_index[position if step is None else step - base] = message
        lacks_outcome = lead is None
        # A lead withdrawn at submission (DNC) queues no drips but still records each step.
        for index in sorted(set(range(expected)) | set(by_index)):
            expected_by_step[index] += 1
            counts = status_by_step.setdefault(index, Counter())
            message = by_index.get(index)
            if message is None:
                counts["missing"] += 1
                lacks_outcome = True
                continue
            status = str(message.get("status") or "none")
            counts[status] += 1
            if status in IN_FLIGHT_STATUSES or status == "none":
                lacks_outcome = True
            if _was_handed_to_carrier(message):
                sent_by_step[index] += 1
            if status in ("undelivered", "failed"):
                code = message.get("error_code")
                errors_by_code[(status, "none" if code in (None, "") else str(code))] += 1
            if status in ("skipped", "cancelled"):
                skipped_by_reason[(status, _skip_reason(message))] += 1
            if index == 0 and origin.submitted_at is not None:
                sent_at = parse_timestamp(message.get("sent_at"))
                delivered_at = parse_timestamp(message.get("delivered_at"))
                if sent_at is not None:
                    to_sent.append((sent_at - origin.submitted_at).total_seconds())
                if delivered_at is not None:
                    to_delivered.append((delivered_at - origin.submitted_at).total_seconds())
        if lacks_outcome:
            without_outcome.append(lead_id)

    steps = sorted(set(expected_by_step) | set(status_by_step))
    summary = Summary(
        rows=len(rows_results),
        accepted=len(accepted_rows),
        new_leads=len(primary),
        duplicates=len(accepted_rows) - len(primary),
        rejected=len(rejected_rows),
        rejected_by_reason=dict(Counter(_rejection_key(r) for r in rejected_rows).most_common()),
        rejected_rows_by_reason={
            key: sorted(r.row for r in rejected_rows if _rejection_key(r) == key)
            for key in dict.fromkeys(_rejection_key(r) for r in rejected_rows)
        },
        unanswered=len(unanswered_rows),
        unanswered_by_reason=dict(Counter(r.reason or "no answer"
                                          for r in unanswered_rows).most_common()),
        throttled=sum(r.throttled for r in rows_results),
        steps=steps,
        expected_by_step={s: expected_by_step[s] for s in steps},
        sent_by_step={s: sent_by_step[s] for s in steps},
        status_by_step={s: dict(status_by_step.get(s, {})) for s in steps},
        errors_by_code=dict(sorted(errors_by_code.items())),
        skipped_by_reason=dict(sorted(skipped_by_reason.items())),
        drips_queued=sum(max(0, r.drips_queued) for r in primary.values()),
        drips_sent=sum(count for step, count in sent_by_step.items() if step >= 1),
        submit_to_sent=latency(to_sent),
        submit_to_delivered=latency(to_delivered),
        leads_without_outcome=without_outcome,
    )
    summary.checks = invariant_checks(summary)
    return summary


def invariant_checks(summary: Summary) -> list[Check]:
    answered = summary.accepted + summary.rejected
    counted = Check(
        "accepted + rejected == rows",
        answered == summary.rows,
        f"{summary.accepted} + {summary.rejected} = {answered}, rows = {summary.rows}"
        + (f" ({summary.unanswered} rows got no answer)" if summary.unanswered else ""),
    )
    messages = sum(summary.expected_by_step.values())
    missing = summary.leads_without_outcome
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        detail = f"{len(missing)} of {summary.new_leads} leads lack one: {shown}"
    else:
        detail = f"{summary.new_leads} leads, {messages} messages"
    recorded = Check("every accepted lead has a recorded outcome for each message",
                     not missing, detail)
    return [counted, recorded]


def _step_label(step: int) -> str:
    return "initial" if step == 0 else f"drip {step}"


def _grid(rows: Sequence[Sequence[object]]) -> list[str]:
    """Aligned columns: labels (first column) and notes (text in parentheses) left-aligned,
    figures right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row))
              for i in range(max(len(row) for row in cells))]
    lines = []
    for row in cells:
        parts = [
            cell.ljust(widths[i]) if i == 0 or cell.startswith("(") else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_table(summary: Summary) -> str:
    """The report as plain, aligned text."""
    out: list[str] = []
    head: list[list[object]] = [
        ["Rows", summary.rows],
        ["Accepted", summary.accepted],
        ["  new leads", summary.new_leads],
        ["  duplicates (existing lead returned)", summary.duplicates],
        ["Rejected", summary.rejected],
    ]
    for reason, count in summary.rejected_by_reason.items():
        numbers = summary.rejected_rows_by_reason.get(reason, [])
        shown = ", ".join(str(n) for n in numbers[:ROWS_SHOWN_PER_REASON])
        more = ", ..." if len(numbers) > ROWS_SHOWN_PER_REASON else ""
        head.append([f"  {reason}", count, f"(row{'s' if len(numbers) > 1 else ''} {shown}{more})"
                     if numbers else ""])
    if summary.unanswered:
        head.append(["No answer", summary.unanswered])
        head += [[f"  {reason}", count] for reason, count in summary.unanswered_by_reason.items()]
    head.append(["429 answers honoured", summary.throttled])
    out += _grid(head)

    steps = summary.steps
    if steps:
        out.append("")
        table: list[list[object]] = [
            ["Messages", *(_step_label(s) for s in steps), "total"],
        ]

        def add(label: str, values: Mapping[int, int]) -> None:
            counts = [values.get(s, 0) for s in steps]
            table.append([f"  {label}", *counts, sum(counts)])

        add("expected", summary.expected_by_step)
        add("sent", summary.sent_by_step)
        by_status = {
            s: summary.status_by_step.get(s, {}) for s in steps
        }
        statuses = list(STATUS_ROWS)
        extra = sorted({st for counts in by_status.values() for st in counts}
                       - set(statuses) - {"sent", "missing", *IN_FLIGHT_STATUSES})
        for status in statuses + extra:
            if status in STATUS_ROWS[:3] or any(by_status[s].get(status) for s in steps):
                add(status, {s: by_status[s].get(status, 0) for s in steps})
        awaiting = {s: by_status[s].get("sent", 0) for s in steps}
        if any(awaiting.values()):
            add("sent, no receipt yet", awaiting)
        in_flight = {s: sum(by_status[s].get(st, 0) for st in IN_FLIGHT_STATUSES) for s in steps}
        if any(in_flight.values()):
            add("no outcome yet", in_flight)
        missing = {s: by_status[s].get("missing", 0) for s in steps}
        if any(missing.values()):
            add("missing", missing)
        out += _grid(table)

    if summary.errors_by_code:
        out.append("")
        out += _grid([["Undelivered and failed, by error code", "messages"]]
                     + [[f"  {status} {code}", count]
                        for (status, code), count in summary.errors_by_code.items()])
    if summary.skipped_by_reason:
        out.append("")
        out += _grid([["Skipped and cancelled, by reason", "messages"]]
                     + [[f"  {status}: {reason}", count]
                        for (status, reason), count in summary.skipped_by_reason.items()])

    out.append("")
    out += _grid([
        ["Drips queued", summary.drips_queued],
        ["Drips sent", summary.drips_sent],
    ])
    out.append("")
    out += _grid([
        ["Initial message, seconds from submit", "p50", "p95", "n"],
        ["  to sent", _seconds(summary.submit_to_sent.p50), _seconds(summary.submit_to_sent.p95),
         summary.submit_to_sent.n],
        ["  to delivered", _seconds(summary.submit_to_delivered.p50),
         _seconds(summary.submit_to_delivered.p95), summary.submit_to_delivered.n],
    ])
    out.append("")
    out += [f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in summary.checks]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------


class Progress:
    """One line on stderr, rewritten in place on a terminal; occasional lines otherwise."""

    def __init__(self, label: str, total: int, stream=None):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_line_at = 0.0

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        width = 24
        filled = int(width * done / self.total) if self.total else width
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
        if note:
            line += f"  {note}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
        elif force or time.monotonic() - self._last_line_at >= 10:
            self._last_line_at = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self, done: int, note: str = "") -> None:
        self.update(done, note, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------
# Talking to the stack
# --------------------------------------------------------------------------------------------


def read_leads_csv(path: Path) -> list[dict[str, str]]:
    """Data rows of the file; empty lines are not rows (csv skips them)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def rejection_reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            field_name, reason = first.get("field"), first.get("reason")
            if field_name and reason:
                return f"{field_name}: {reason}"
            if reason:
                return str(reason)
        if body.get("error"):
            return str(body["error"])
    return f"HTTP {response.status_code}"


class LeadSubmitter:
    """Posts rows like a well-behaved integrator: bounded concurrency, and when the API says
    429 every worker waits out `Retry-After` before the next request, not just the one told."""

    def __init__(self, client: httpx.AsyncClient, api_key: str, flow_id: str, concurrency: int,
                 progress: Progress | None = None, rng: random.Random | None = None):
        self.client = client
        self.api_key = api_key
        self.flow_id = flow_id
        self.semaphore = asyncio.Semaphore(concurrency)
        self.progress = progress
        self.rng = rng or random.Random()
        self.resume_at = 0.0  # monotonic time before which nobody sends
        self.done = 0
        self.throttled = 0
        self.retried = 0  # network errors and 5xx answers retried

    def body(self, row: Mapping[str, str | None]) -> dict[str, Any]:
        body: dict[str, Any] = {"flow_id": self.flow_id}
        for name in LEAD_FIELDS:
            value = row.get(name)
            if value is not None:
                body[name] = value
        return body

    async def submit_all(self, rows: Sequence[Mapping[str, str | None]]) -> list[RowResult]:
        tasks = [self._submit(number, row) for number, row in enumerate(rows, start=1)]
        return list(await asyncio.gather(*tasks))

    async def _wait_turn(self) -> None:
        while (delay := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay + self.rng.uniform(0, 0.25))

    async def _submit(self, number: int, row: Mapping[str, str | None]) -> RowResult:
        async with self.semaphore:
            result = await self._submit_row(number, row)
        self.done += 1
        if self.progress:
            self.progress.update(self.done, self.note())
        return result

    def note(self) -> str:
        note = f"429s honoured: {self.throttled}"
        return note + (f", retries: {self.retried}" if self.retried else "")

    async def _submit_row(self, number: int, row: Mapping[str, str | None]) -> RowResult:
        headers = {"X-API-Key": self.api_key,
                   "Idempotency-Key": f"demo-{self.flow_id}-row-{number}"}
        body = self.body(row)
        throttled = 0
        failures = 0
        while True:
            await self._wait_turn()
            submitted_at = datetime.now(UTC)
            try:
                response = await self.client.post("/v1/leads", json=body, headers=headers)
            except httpx.TransportError as exc:
                failures += 1
                if failures > MAX_RETRIES:
                    return RowResult.unanswered(number, type(exc).__name__, throttled=throttled)
                self.retried += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            if response.status_code == 429:
                throttled += 1
                self.throttled += 1
                wait = retry_after_seconds(response)
                self.resume_at = max(self.resume_at, time.monotonic() + wait)
                continue
            if response.status_code >= 500:
                failures += 1
                if failures > MAX_RETRIES:
                    return RowResult.unanswered(number, f"HTTP {response.status_code}",
                                                status_code=response.status_code,
                                                throttled=throttled)
                self.retried += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            if 200 <= response.status_code < 300:
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                if not isinstance(answer, dict) or not answer.get("lead_id"):
                    return RowResult.unanswered(number, "2xx without a lead_id",
                                                status_code=response.status_code,
                                                throttled=throttled)
                return RowResult.accepted(
                    number, str(answer["lead_id"]), submitted_at,
                    duplicate=bool(answer.get("duplicate")),
                    drips_queued=_as_int(answer.get("drips_queued")),
                    status_code=response.status_code, throttled=throttled)
            return RowResult.rejected(number, response.status_code, rejection_reason(response),
                                      throttled=throttled)

    def _backoff(self, failures: int) -> float:
        return min(8.0, 0.5 * 2 ** (failures - 1)) + self.rng.uniform(0, 0.25)


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def lead_settled(lead: Mapping[str, Any] | None, expected_messages: int,
                 now: datetime | None = None) -> bool:
    """Every message the lead should have exists and is final, or was sent so long ago that
    its receipt is not coming (some carriers never send one)."""
    if not lead:
        return False
    now = now or datetime.now(UTC)
    messages = lead.get("messages") or []

    def settled(message: Mapping[str, Any]) -> bool:
        if message.get("status") in FINAL_STATUSES:
            return True
        sent_at = parse_timestamp(message.get("sent_at"))
        return message.get("status") == "sent" and sent_at is not None and (
            (now - sent_at).total_seconds() > RECEIPT_PATIENCE_S)

    return len(messages) >= expected_messages and all(settled(m) for m in messages)


def _next_due(lead: Mapping[str, Any]) -> datetime | None:
    """When the earliest still-scheduled message falls due, if all unsettled ones are waiting."""
    waiting = [m for m in lead.get("messages") or [] if m.get("status") not in FINAL_STATUSES]
    if not waiting or any(m.get("status") != "scheduled" for m in waiting):
        return None
    dues = [parse_timestamp(m.get("due_at")) for m in waiting]
    if any(d is None for d in dues):
        return None
    return min(dues)  # type: ignore[type-var]


async def poll_leads(client: httpx.AsyncClient, admin_token: str, expected: Mapping[str, int],
                     minutes: float, concurrency: int,
                     progress: Progress | None = None) -> dict[str, dict[str, Any] | None]:
    """Read each lead until all its messages are final, or until `minutes` have passed."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    latest: dict[str, dict[str, Any] | None] = {lead_id: None for lead_id in expected}
    pending = set(expected)
    not_before: dict[str, datetime] = {}
    deadline = time.monotonic() + minutes * 60
    semaphore = asyncio.Semaphore(concurrency)

    async def fetch(lead_id: str) -> None:
        async with semaphore:
            try:
                response = await client.get(f"/v1/leads/{lead_id}", headers=headers)
            except httpx.TransportError:
                return
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                return
            if isinstance(body, dict):
                latest[lead_id] = body

    def report() -> None:
        if progress:
            messages = [m for lead in latest.values() if lead for m in lead.get("messages") or []]
            final = sum(1 for m in messages if m.get("status") in FINAL_STATUSES)
            left = max(0, int(deadline - time.monotonic()))
            progress.update(len(expected) - len(pending),
                            f"messages final: {final}/{sum(expected.values())}, {left}s left")

    while pending and time.monotonic() < deadline:
        now = datetime.now(UTC)
        due = [lead_id for lead_id in pending
               if lead_id not in not_before or not_before[lead_id] <= now]
        await asyncio.gather(*(fetch(lead_id) for lead_id in due))
        for lead_id in due:
            lead = latest[lead_id]
            if lead_settled(lead, expected[lead_id]):
                pending.discard(lead_id)
                not_before.pop(lead_id, None)
            elif lead is not None and (next_due := _next_due(lead)) is not None:
                not_before[lead_id] = next_due
            else:
                not_before.pop(lead_id, None)
        report()
        if pending:
            await asyncio.sleep(POLL_INTERVAL_S)
    if progress:
        progress.finish(len(expected) - len(pending),
                        "all settled" if not pending else f"{len(pending)} still open")
    return latest


# --------------------------------------------------------------------------------------------
# The local stack: use a running one or start one
# --------------------------------------------------------------------------------------------


class StackError(RuntimeError):
    pass


def _read_stack_json(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not all(info.get(k) for k in ("api_url", "admin_token",
                                                                   "api_key")):
        return None
    return info


def stack_answers(api_url: str) -> bool:
    try:
        httpx.get(f"{api_url.rstrip('/')}/v1/stats", timeout=STACK_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return True


class LocalStack:
    """`stack.json` of a running stack, or a stack started for the demo and stopped after it."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.stack_json = state_dir / "stack.json"
        self.log_path = state_dir / "demo-devstack.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Self:
        info = _read_stack_json(self.stack_json)
        if info and stack_answers(info["api_url"]):
            self.info = info
            return self
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def _start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        print(f"Starting the local stack (log: {self.log_path})", file=sys.stderr, flush=True)
        launched = time.time()
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                # The demo runs at any hour: its own stack opens every hour for its texts.
                [sys.executable, "-m", "devstack", "--state-dir", str(self.state_dir),
                 "--quiet-hours", "devstack/quiet_hours_any_time.json"],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Detached from the terminal's process group: a Ctrl-C reaches only the demo, which
                # stops the stack with exactly one SIGINT.
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + STACK_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"the local stack exited with status {self.process.returncode}"
                                 f"; see {self.log_path}")
            info = _read_stack_json(self.stack_json)
            # A stack.json left by an earlier run names a stack that is gone: wait for ours.
            fresh = self.stack_json.exists() and self.stack_json.stat().st_mtime >= launched - 1
            if info and fresh and stack_answers(info["api_url"]):
                self.info = info
                return
            time.sleep(0.5)
        self.stop()
        raise StackError(f"the local stack did not come up within {STACK_START_TIMEOUT_S:.0f} s;"
                         f" see {self.log_path}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --------------------------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------------------------


async def create_flow(client: httpx.AsyncClient, admin_token: str) -> str:
    response = await client.post("/v1/flows", json=demo_flow(),
                                 headers={"Authorization": f"Bearer {admin_token}"})
    if response.status_code not in (200, 201):
        raise StackError(f"creating the flow failed: HTTP {response.status_code} "
                         f"{rejection_reason(response)}")
    flow_id = response.json().get("flow_id")
    if not flow_id:
        raise StackError("creating the flow returned no flow_id")
    return str(flow_id)


async def run_demo(info: Mapping[str, Any], rows: list[dict[str, str]], concurrency: int,
                   wait_minutes: float) -> Summary:
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=str(info["api_url"]).rstrip("/"),
                                 timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        flow_id = await create_flow(client, str(info["admin_token"]))
        print(f"Flow:  {flow_id} (first text now, drips after 1 and 2 minutes)")
        print(f"Submitting {len(rows)} rows, {concurrency} at a time "
              f"(300 requests/min per key; 429 and Retry-After honoured)")
        started = time.monotonic()
        submitter = LeadSubmitter(client, str(info["api_key"]), flow_id, concurrency,
                                  Progress("submit", len(rows)))
        results = await submitter.submit_all(rows)
        submitter.progress.finish(submitter.done, submitter.note())
        print(f"Submitted in {time.monotonic() - started:.1f} s")

        expected = {lead_id: 1 + row.drips_queued
                    for lead_id, row in _primary_rows(results).items()}
        print(f"Waiting up to {wait_minutes:g} min for receipts and drips of "
              f"{len(expected)} leads")
        leads = await poll_leads(client, str(info["admin_token"]), expected, wait_minutes,
                                 concurrency, Progress("settle", len(expected)))
    return summarise(results, leads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=Path("examples/leads.csv"))
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--wait-minutes", type=float, default=6.0)
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")

    if not args.csv.is_file():
        parser.error(f"no such file: {args.csv}")
    rows = read_leads_csv(args.csv)
    terminated = False

    def stop_on_sigterm(signum: int, frame: object) -> None:
        # Unwind like Ctrl-C, so a stack started here is stopped rather than orphaned.
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        with LocalStack(args.state_dir.resolve()) as stack:
            how = "started for the demo" if stack.started_here else "already running"
            print(f"Stack: {stack.info['api_url']} ({how})")
            summary = asyncio.run(run_demo(stack.info, rows, args.concurrency,
                                           args.wait_minutes))
    except StackError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndemo: " + ("terminated" if terminated else "interrupted"), file=sys.stderr)
        return 143 if terminated else 130
    print()
    print(f"Sendline demo: {args.csv}")
    print(render_table(summary))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
